"""The in-memory point-in-time source must behave like barman-cloud on a real archive (Azurite, a private
cluster archiving its WAL) for everything the core relies on: a window that holds what was written,
a database as of an instant holding exactly what was committed by then, refusals outside the window and
in a gap, a clear failure when WAL is missing, and nothing left behind after a stop or a crash."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.adapters.pointintime import (
    ArchivePruned,
    Gap,
    InstantRefused,
    PointInTimeError,
    PointInTimeSource,
    PointInTimeStopped,
    TemporaryInstance,
)
from shared.adapters.pointintime.memory import MemoryPointInTime
from shared.adapters.postgres.memory import MemoryDatabases, Table
from shared.domain.environments import DatabaseConnection
from tests.support.archiving import REPO_ROOT, ArchivedCluster, archived_cluster, processes_in

pytestmark = pytest.mark.integration

DATABASE = "app"
TICKS = 16
INTERVAL = 0.5  # seconds between ticks
SWITCH_AFTER = (5, 10)  # ticks after which the segment is closed: ticks 6-10 are in a segment of their own
EARLY, MIDDLE = 3, 8  # instants after these ticks: before the middle segment, and in it


@dataclass(frozen=True)
class Tick:
    id: int
    before: datetime  # no later than its commit
    after: datetime  # no earlier than its commit


@dataclass
class World:
    source: PointInTimeSource
    server: str
    ticks: list[Tick]
    read_ticks: Callable[[DatabaseConnection], list[int]]
    # While inside, the WAL of ticks 6-10 (the middle segment) is missing from the archive.
    segment_missing: Callable[[], AbstractContextManager[None]]
    # A host that died while its temporary instance was recovering, the instance's postmaster killed -9 too.
    crash: Callable[[datetime], TemporaryInstance]
    leftovers: Callable[[TemporaryInstance], list[str]]
    # Another base backup now; the instant it ended.
    base_backup: Callable[[], datetime]
    # How many WAL files the archive holds (None: the twin keeps no WAL).
    wal_files: Callable[[], int | None]


def instant_after(world: World, count: int) -> datetime:
    """An instant after tick ``count``'s commit and before the next tick's."""
    return world.ticks[count - 1].after + (world.ticks[count].before - world.ticks[count - 1].after) / 2


@pytest.fixture(scope="module", params=["memory", "barman"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "memory":
        yield memory_world()
    else:
        connection_string = request.getfixturevalue("storage_connection_string")
        with barman_world(connection_string) as real:
            yield real


def memory_world() -> World:
    databases = MemoryDatabases()
    source = MemoryPointInTime(databases)
    server, start = "pitr-test", datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    connection = DatabaseConnection(host="memory", database=DATABASE, user="app")
    ticks_table = 'public."ticks"'
    database = databases.create(connection, {ticks_table: Table(("id", "at"), [])})
    source.base_backup(server, start)
    ticks = []
    for number in range(1, TICKS + 1):
        at = start + timedelta(seconds=1 + number * INTERVAL)
        database.tables[ticks_table].rows.append((number, at.isoformat()))
        source.capture(server, connection, at)
        ticks.append(Tick(number, at, at))

    def read_ticks(connection: DatabaseConnection) -> list[int]:
        return sorted(row[0] for row in databases.database(connection).tables[ticks_table].rows)

    @contextlib.contextmanager
    def segment_missing() -> Iterator[None]:
        latest = source.window(server).latest
        assert latest is not None
        reason = "1 WAL segment missing from the archive (000000010000000000000009); no base backup after it."
        source.gaps[server] = [Gap(ticks[SWITCH_AFTER[0] - 1].after, latest, reason)]
        try:
            yield
        finally:
            source.gaps.pop(server)

    held: list[object] = []

    def crash(instant: datetime) -> TemporaryInstance:
        started: list[TemporaryInstance] = []
        reading = source.as_of(server, instant, DATABASE, on_started=started.append)
        reading.__enter__()  # and never left: the host died
        held.append(reading)
        return started[0]

    def leftovers(instance: TemporaryInstance) -> list[str]:
        return [f"{instance} still running"] if instance in source.running() else []

    def base_backup() -> datetime:
        at = ticks[-1].after + timedelta(seconds=1)
        source.base_backup(server, at)
        return at

    return World(source, server, ticks, read_ticks, segment_missing, crash, leftovers, base_backup, lambda: None)


@contextlib.contextmanager
def barman_world(connection_string: str) -> Iterator[World]:
    container = f"pitr-{uuid.uuid4().hex[:12]}"
    service = BlobServiceClient.from_connection_string(connection_string)
    service.create_container(container)
    try:
        with archived_cluster(connection_string, container) as cluster:
            yield _write_ticks(cluster, connection_string, service.get_container_client(container))
    finally:
        service.delete_container(container)


def _write_ticks(cluster: ArchivedCluster, connection_string: str, blobs: ContainerClient) -> World:
    with cluster.connect() as connection:
        connection.execute(f"CREATE DATABASE {DATABASE}")
    with cluster.connect(DATABASE) as connection:
        connection.execute("CREATE TABLE ticks (id integer PRIMARY KEY, at timestamptz NOT NULL)")
    cluster.base_backup()
    ticks, segments = [], []
    with cluster.connect(DATABASE) as connection:
        for number in range(1, TICKS + 1):
            inserted = connection.execute(
                "INSERT INTO ticks VALUES (%s, clock_timestamp()) RETURNING at", (number,)
            ).fetchone()
            committed = connection.execute("SELECT clock_timestamp()").fetchone()
            assert inserted is not None
            assert committed is not None
            ticks.append(Tick(number, inserted[0], committed[0]))
            if number in SWITCH_AFTER:
                segments.append(cluster.switch_wal())
            time.sleep(INTERVAL)
    cluster.wait_archived(cluster.switch_wal())
    middle = next(blob.name for blob in blobs.list_blobs() if blob.name.endswith(f"/{segments[1]}.gz"))

    def read_ticks(connection: DatabaseConnection) -> list[int]:
        with psycopg.connect(
            host=connection.host, port=connection.port, user=connection.user, dbname=connection.database
        ) as reader:
            return [row[0] for row in reader.execute("SELECT id FROM ticks ORDER BY id")]

    @contextlib.contextmanager
    def segment_missing() -> Iterator[None]:
        content = blobs.download_blob(middle).readall()
        blobs.delete_blob(middle)
        try:
            yield
        finally:
            blobs.upload_blob(middle, content, overwrite=True)

    def crash(instant: datetime) -> TemporaryInstance:
        arguments = {
            "connection_string": connection_string,
            "container": blobs.container_name,
            "scratch_root": str(cluster.directory / "scratch"),
            "server": cluster.server,
            "instant": instant.isoformat(),
            "database": DATABASE,
        }
        host = subprocess.Popen(
            [sys.executable, "-m", "tests.support.archiving", json.dumps(arguments)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert host.stdout is not None
            instance = TemporaryInstance(**json.loads(host.stdout.readline() or "{}"))
            pid_file = Path(instance.directory) / "data" / "postmaster.pid"
            deadline = time.monotonic() + 120
            while not pid_file.exists():  # started, and fetching WAL
                assert host.poll() is None, host.stderr.read() if host.stderr else ""
                assert time.monotonic() < deadline, "the temporary instance did not start in 120 s"
                time.sleep(0.05)
        finally:
            host.kill()  # the host dies, leaving its instance running
            host.wait()
            if host.stdout is not None:
                host.stdout.close()
            if host.stderr is not None:
                host.stderr.close()
        while not pid_file.read_text().strip():
            time.sleep(0.05)
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)  # and so does the instance's postmaster
        return instance

    def leftovers(instance: TemporaryInstance) -> list[str]:
        directory = Path(instance.directory)
        found = [f"process {pid}" for pid in processes_in(directory)]
        return found + ([f"directory {directory}"] if directory.exists() else [])

    def base_backup() -> datetime:
        cluster.base_backup()
        return cluster.archive.archive(cluster.server).backups[-1].end_time

    def wal_files() -> int:
        return sum(1 for blob in blobs.list_blobs(name_starts_with=f"barman/{cluster.server}/wals/"))

    return World(
        cluster.archive, cluster.server, ticks, read_ticks, segment_missing, crash, leftovers, base_backup, wal_files
    )


def test_the_window_holds_what_was_written(world: World) -> None:
    window = world.source.window(world.server)
    assert window.earliest is not None
    assert window.latest is not None
    assert window.earliest <= world.ticks[0].before
    assert world.ticks[-1].before <= window.latest
    assert window.gaps == ()
    assert window.refusal(instant_after(world, TICKS // 2)) is None


def test_as_of_an_instant_holds_exactly_the_ticks_committed_by_then(world: World) -> None:
    """Three instants at once (three temporary instances side by side): early, in the middle, and the
    window's end, where no commit follows (recovery then replays to the end of the archive)."""
    latest = world.source.window(world.server).latest
    assert latest is not None
    cases = {instant_after(world, EARLY): EARLY, instant_after(world, MIDDLE): MIDDLE, latest: TICKS}
    started: list[TemporaryInstance] = []

    def read(instant: datetime) -> list[int]:
        with world.source.as_of(world.server, instant, DATABASE, on_started=started.append) as connection:
            assert connection.database == DATABASE
            return world.read_ticks(connection)

    with ThreadPoolExecutor(len(cases)) as pool:
        found = dict(zip(cases, pool.map(read, cases), strict=True))
    assert found == {instant: list(range(1, count + 1)) for instant, count in cases.items()}
    assert len(started) == len(cases)
    assert [leftover for instance in started for leftover in world.leftovers(instance)] == []


def test_an_instant_outside_the_window_is_refused_naming_the_window(world: World) -> None:
    window = world.source.window(world.server)
    assert window.earliest is not None
    assert window.latest is not None
    started: list[TemporaryInstance] = []
    for instant in (window.earliest - timedelta(minutes=1), window.latest + timedelta(hours=1)):
        with (
            pytest.raises(InstantRefused, match="outside the recovery window") as refused,
            world.source.as_of(world.server, instant, DATABASE, on_started=started.append),
        ):
            pass
        assert window.earliest.isoformat() in str(refused.value)
        assert window.latest.isoformat() in str(refused.value)
    assert started == []


def test_a_missing_segment_is_a_gap_and_an_instant_in_it_is_refused(world: World) -> None:
    inside = instant_after(world, MIDDLE)
    with world.segment_missing():
        window = world.source.window(world.server)
        assert len(window.gaps) == 1
        gap = window.gaps[0]
        assert gap.start <= world.ticks[SWITCH_AFTER[0]].before  # from the last commit before it
        assert gap.end == window.latest
        assert "missing from the archive" in gap.reason
        assert window.refusal(instant_after(world, EARLY)) is None
        with (
            pytest.raises(InstantRefused, match="falls in a gap") as refused,
            world.source.as_of(world.server, inside, DATABASE),
        ):
            pass
        assert "missing from the archive" in str(refused.value)
    assert world.source.window(world.server).gaps == ()


def test_recovery_that_meets_missing_wal_fails_naming_the_instant(world: World) -> None:
    """The segment goes missing after the window was checked: the temporary instance cannot reach the
    instant, and says so; nothing is left."""
    inside = instant_after(world, MIDDLE)
    started: list[TemporaryInstance] = []
    with contextlib.ExitStack() as stack:

        def lose_segment(instance: TemporaryInstance) -> None:
            started.append(instance)
            stack.enter_context(world.segment_missing())

        with (
            pytest.raises(PointInTimeError, match="recovery ended before that instant was reached") as failed,
            world.source.as_of(world.server, inside, DATABASE, on_started=lose_segment),
        ):
            pass
    assert not isinstance(failed.value, InstantRefused)
    assert inside.isoformat() in str(failed.value)
    assert world.leftovers(started[0]) == []


def test_a_stop_before_the_instance_is_ready_leaves_nothing(world: World) -> None:
    stop = threading.Event()
    started: list[TemporaryInstance] = []

    def record(instance: TemporaryInstance) -> None:
        started.append(instance)
        stop.set()

    with (
        pytest.raises(PointInTimeStopped),
        world.source.as_of(world.server, instant_after(world, EARLY), DATABASE, on_started=record, stop=stop),
    ):
        pass
    assert world.leftovers(started[0]) == []


def test_release_after_a_crash_leaves_no_process_and_no_directory(world: World) -> None:
    instance = world.crash(instant_after(world, EARLY))
    world.source.release(instance)
    assert world.leftovers(instance) == []
    world.source.release(instance)  # again: harmless
    assert world.leftovers(instance) == []


def test_a_prune_removes_what_no_instant_from_then_on_needs_and_keeps_the_rest_restorable(world: World) -> None:
    """Last in the module: it removes the first base backup of the world."""
    first = world.source.window(world.server).earliest
    assert first is not None
    assert world.source.prune(world.server, datetime.now(UTC)).base_backups == ()  # one base backup: it stays
    ended = world.base_backup()
    wal_before = world.wal_files()
    assert world.source.prune(world.server, ended - timedelta(microseconds=1)).base_backups == ()  # not yet ended

    pruned = world.source.prune(world.server, ended)
    assert len(pruned.base_backups) == 1
    wal_after = world.wal_files()
    if wal_before is not None and wal_after is not None:  # (archiving goes on meanwhile: it may add a file)
        assert pruned.wal_segments > 0  # the WAL of the ticks, which only the first base backup needed
        assert wal_after <= wal_before - pruned.wal_segments + 1
    window = world.source.window(world.server)
    assert window.earliest == ended
    assert window.latest is not None
    assert window.gaps == ()
    assert window.refusal(instant_after(world, MIDDLE)) is not None  # before the kept base backup: gone
    with world.source.as_of(world.server, window.latest, DATABASE) as connection:
        assert world.read_ticks(connection) == list(range(1, TICKS + 1))
    assert world.source.prune(world.server, ended) == ArchivePruned()  # again: nothing more to remove
