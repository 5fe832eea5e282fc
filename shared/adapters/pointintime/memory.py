"""The in-memory twin of the point-in-time seam, for unit tests of the core: a server's databases as
recorded states over time, and "as of T" as a temporary database in the PostgreSQL twin holding the last
state recorded at or before T. Held to barman-cloud by tests/integration/test_point_in_time_contract.py."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from shared.adapters.pointintime import (
    ArchivePruned,
    Gap,
    InstantRefused,
    PointInTimeError,
    PointInTimeStopped,
    RecoveryWindow,
    TemporaryInstance,
)
from shared.adapters.postgres.memory import MemoryDatabase, MemoryDatabases, Table, address
from shared.domain.environments import DatabaseConnection


@dataclass(frozen=True)
class _State:
    at: datetime
    tables: dict[str, Table] | None  # None: the database was dropped at ``at``
    server_version: int


def _copy(tables: Mapping[str, Table]) -> dict[str, Table]:
    return {name: Table(table.columns, list(table.rows)) for name, table in tables.items()}


class MemoryPointInTime:
    """A server's archive, recorded by the tests. ``base_backup`` starts the window (without one, the
    first recorded state does); each ``record``/``capture`` is a committed change of one database at its
    instant and moves the window's end there, as the real archive's window ends at its last archived
    commit; ``archived_until`` moves it on without a change, which only the twin can (barman's window stays
    at the last commit until the next one is archived); ``gaps`` are the test's to set. ``fail_with`` makes
    the next temporary instance of a server fail with that reason, as a recovery that stops early does."""

    def __init__(self, databases: MemoryDatabases) -> None:
        self.databases = databases
        self.gaps: dict[str, list[Gap]] = {}
        self.fail_with: dict[str, str] = {}
        self._base_backups: dict[str, list[datetime]] = {}
        self._states: dict[tuple[str, str], list[_State]] = {}
        self._latest: dict[str, datetime] = {}
        self._running: dict[TemporaryInstance, DatabaseConnection] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    # -- what the tests record -------------------------------------------------------------------
    def base_backup(self, server: str, at: datetime) -> None:
        with self._lock:
            self._base_backups.setdefault(server, []).append(at)
            self._advance(server, at)

    def record(
        self, server: str, database: str, state: MemoryDatabase | Mapping[str, Table] | None, at: datetime
    ) -> None:
        """``database`` of ``server`` holds ``state`` from ``at`` on (None: it was dropped then)."""
        if isinstance(state, MemoryDatabase):
            recorded = _State(at, _copy(state.tables), state.server_version)
        else:
            recorded = _State(at, None if state is None else _copy(state), 150000)
        with self._lock:
            states = self._states.setdefault((server, database), [])
            states.append(recorded)
            states.sort(key=lambda each: each.at)
            self._advance(server, at)

    def capture(self, server: str, connection: DatabaseConnection, at: datetime) -> None:
        """Record what the PostgreSQL twin holds now at ``connection`` as its state from ``at`` on."""
        self.record(server, connection.database, self.databases.database(connection), at)

    def archived_until(self, server: str, at: datetime) -> None:
        with self._lock:
            self._advance(server, at)

    def running(self) -> set[TemporaryInstance]:
        """Temporary instances not stopped yet (what a crash would leave behind)."""
        with self._lock:
            return set(self._running)

    def _advance(self, server: str, at: datetime) -> None:
        if server not in self._latest or at > self._latest[server]:
            self._latest[server] = at

    # -- PointInTimeSource ---------------------------------------------------------------------
    def window(self, server: str) -> RecoveryWindow:
        with self._lock:
            gaps = tuple(self.gaps.get(server, ()))
            starts = self._base_backups.get(server) or [
                states[0].at for (name, _), states in self._states.items() if name == server and states
            ]
            if not starts:
                return RecoveryWindow(None, None, gaps)
            return RecoveryWindow(min(starts), self._latest[server], gaps)

    @contextlib.contextmanager
    def as_of(
        self,
        server: str,
        instant: datetime,
        database: str,
        *,
        on_started: Callable[[TemporaryInstance], None] = lambda instance: None,
        stop: threading.Event | None = None,
        login: DatabaseConnection | None = None,  # unused: the twin's databases take any login
    ) -> Iterator[DatabaseConnection]:
        refusal = self.window(server).refusal(instant)
        if refusal is not None:
            raise InstantRefused(refusal)
        number = next(self._numbers)
        instance = TemporaryInstance(directory=f"memory:/pointintime/{server}/{number}", port=50000 + number)
        connection = DatabaseConnection(
            host=f"pointintime-{number}.memory", port=instance.port, database=database, user="postgres"
        )
        on_started(instance)
        try:
            with self._lock:
                self._running[instance] = connection
                failure = self.fail_with.pop(server, None)
                states = [state for state in self._states.get((server, database), ()) if state.at <= instant]
            if stop is not None and stop.is_set():
                raise PointInTimeStopped(f"Reading {server} as of {instant.isoformat()} was stopped.")
            lost = self.window(server).refusal(instant)  # WAL lost since the check: replay stops short
            if lost is not None:
                raise PointInTimeError(
                    f"{server} cannot be restored to {instant.isoformat()}: recovery ended before that instant was "
                    f"reached ({lost})",
                    transient=False,
                )
            if failure is not None:
                raise PointInTimeError(
                    f"The temporary instance of {server} as of {instant.isoformat()} failed: {failure}",
                    transient=False,
                )
            if not states or states[-1].tables is None:
                raise PointInTimeError(
                    f"Database {database} did not exist on {server} at {instant.isoformat()}.", transient=False
                )
            self.databases.create(connection, _copy(states[-1].tables), states[-1].server_version)
            yield connection
        finally:
            self.release(instance)

    def prune(self, server: str, keep_from: datetime) -> ArchivePruned:
        with self._lock:
            backups = sorted(self._base_backups.get(server, ()))
            ended = [at for at in backups if at <= keep_from]
            if len(ended) < 2:
                return ArchivePruned()
            self._base_backups[server] = [at for at in backups if at >= ended[-1]]
            return ArchivePruned(tuple(at.isoformat() for at in ended[:-1]))

    def release(self, instance: TemporaryInstance) -> None:
        with self._lock:
            connection = self._running.pop(instance, None)
        if connection is not None:
            _drop(self.databases, connection)


def _drop(databases: MemoryDatabases, connection: DatabaseConnection) -> None:
    # The PostgreSQL twin has no public way to drop a database other than a drill's scratch one; this
    # twin is its only other user.
    with databases._lock:
        databases._databases.pop(address(connection), None)
