"""Point-in-time seam: an environment's database as it was at an instant, from continuous archiving
(docs/decisions/0009). ``PointInTimeSource`` is what the use cases depend on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.domain.environments import DatabaseConnection
from shared.faults import Fault


class PointInTimeError(Fault):
    """A database as of an instant could not be given: the archive cannot restore it, or the temporary
    instance failed (the message says which, with the server's own reason)."""


class InstantRefused(PointInTimeError):
    """The instant is not restorable: outside the window or in a gap (``RecoveryWindow.refusal``'s text)."""

    transient = False


class PointInTimeStopped(PointInTimeError):
    """The ``stop`` event was set while the temporary instance was being prepared: nothing is left."""

    transient = True


@dataclass(frozen=True)
class Gap:
    """Instants that cannot be restored: the WAL that covers them is not in the archive."""

    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class RecoveryWindow:
    """From the end of the oldest base backup to the newest instant the archived WAL covers."""

    earliest: datetime | None
    latest: datetime | None
    gaps: tuple[Gap, ...] = ()

    def refusal(self, instant: datetime) -> str | None:
        """Why ``instant`` cannot be restored, or None when it can."""
        if self.earliest is None or self.latest is None:
            return "There is no recovery window yet: no base backup has been archived."
        if instant < self.earliest or instant > self.latest:
            window = f"{self.earliest.isoformat()} … {self.latest.isoformat()}"
            return f"{instant.isoformat()} is outside the recovery window {window}."
        for gap in self.gaps:
            if gap.start <= instant <= gap.end:
                span = f"{gap.start.isoformat()} … {gap.end.isoformat()}"
                return f"{instant.isoformat()} falls in a gap of the window ({span}): {gap.reason}"
        return None


@dataclass(frozen=True)
class TemporaryInstance:
    """A PostgreSQL instance started to read the past: what an operation records, so that a crash or a
    cancel leaves nothing running (``PointInTimeSource.release``). Either a local instance in ``directory`` on
    ``port`` (barman.py), or a temporary managed server, ``server_resource_id`` (flexible.py)."""

    directory: str = ""
    port: int = 0
    server_resource_id: str | None = None

    def record(self) -> dict[str, object]:
        """As an operation's checkpointed output holds it."""
        recorded: dict[str, object] = {"directory": self.directory, "port": self.port}
        if self.server_resource_id is not None:
            recorded["serverResourceId"] = self.server_resource_id
        return recorded

    @classmethod
    def from_record(cls, recorded: Mapping[str, object]) -> TemporaryInstance:
        """What ``record`` wrote, or a record of before temporary servers (a directory and a port only)."""
        server = recorded.get("serverResourceId")
        port = recorded.get("port")
        return cls(
            directory=str(recorded.get("directory") or ""),
            port=int(port) if isinstance(port, int | str) else 0,
            server_resource_id=str(server) if server else None,
        )


@dataclass(frozen=True)
class ArchivePruned:
    """What a prune removed from a server's archive: base backups (by id) and WAL segments."""

    base_backups: tuple[str, ...] = ()
    wal_segments: int = 0


class PointInTimeSource(Protocol):
    def window(self, server: str) -> RecoveryWindow:
        """What the archive of ``server`` can restore, now."""
        ...

    def as_of(
        self,
        server: str,
        instant: datetime,
        database: str,
        *,
        on_started: Callable[[TemporaryInstance], None] = lambda instance: None,
        stop: threading.Event | None = None,
        login: DatabaseConnection | None = None,
    ) -> AbstractContextManager[DatabaseConnection]:
        """``database`` of ``server`` as it was at ``instant``, readable until the context ends; then the
        temporary instance is stopped and its directory removed (a temporary server deleted). ``on_started`` is
        called as soon as the instance's directory exists (before it is started; before a temporary server is
        asked for), so that it can be recorded. ``login`` is how the environment reaches ``server`` now: a
        restored copy of a managed server accepts the same (a local instance has a login of its own)."""
        ...

    def release(self, instance: TemporaryInstance) -> None:
        """Stop a temporary instance and remove its directory (delete a temporary server), whatever state a
        crash left them in. Harmless when they are gone already, or were never made."""
        ...

    def prune(self, server: str, keep_from: datetime) -> ArchivePruned:
        """Remove what no instant from ``keep_from`` on needs: the base backups before the newest one that
        ended by then, and the WAL before that one began. Nothing while no base backup ended by then."""
        ...
