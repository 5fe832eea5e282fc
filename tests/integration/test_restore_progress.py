"""A restore's database load against real Azurite and PostgreSQL: its progress (dump bytes, tables done of
total) reaches the operation row at least every progress interval, and a cancel during the load takes effect
within the interval plus the time to stop pg_restore, leaving the target exactly as before. The bounds are
the settings': APPBACKUPS_PROGRESS_INTERVAL_SECONDS, the adapter's kill time, and a slack for Azurite's
round trips and this test's sampling."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from shared.domain.access import Principal
from shared.domain.operations import Operation, OperationStatus, StepStatus
from tests.support.appdata import source_and_target
from tests.support.fingerprints import fingerprint
from tests.support.restoring import Harness

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")
BOB = Principal(id="bob", name="Bob")
INTERVAL = 1  # APPBACKUPS_PROGRESS_INTERVAL_SECONDS (its minimum; the default is 2)
KILL = 0.5  # the database adapter stops pg_restore and psql within this once the step's ``stopping`` is set
SLACK = 1.0  # Azurite's round trips, a dump chunk's read, this test's sampling
CHUNK_PAUSE = 0.25  # the dump stream is slowed by this per chunk, so that its load takes several intervals
SAMPLE = 0.05


@pytest.fixture
def harness(storage_services, storage_connection_string):
    return Harness(storage_connection_string, APPBACKUPS_PROGRESS_INTERVAL_SECONDS=str(INTERVAL))


@pytest.fixture
def apps(harness, database_factory, postgres_admin_dsn):
    return source_and_target(harness.services, database_factory, postgres_admin_dsn)


def _slow_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        time.sleep(CHUNK_PAUSE)
        yield chunk


@dataclass
class Sampler:
    """Reads the restore's row every SAMPLE seconds while the test drains the work, keeping each change of
    the switch step's progress with when it was seen; ``act`` may do something on a sample (a cancel)."""

    read: Callable[[], Operation]
    act: Callable[[Operation], None] = lambda operation: None
    seen: list[tuple[float, Operation]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        last = None
        while not self.stop.is_set():
            operation = self.read()
            switch = operation.step("switch")
            key = (switch.status, switch.progress)
            if key != last:
                self.seen.append((time.monotonic(), operation))
                last = key
            self.act(operation)
            if not operation.open:
                return
            time.sleep(SAMPLE)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self.run, name="sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self._thread.join(timeout=30)

    def loading(self) -> list[tuple[float, Operation]]:
        """The samples taken while the switch step loaded the dump (bytes read, not all of them yet)."""
        return [
            (at, operation)
            for at, operation in self.seen
            if operation.step("switch").status is StepStatus.RUNNING
            and 0 < operation.step("switch").progress.bytes_done < (operation.step("switch").progress.bytes_total or 0)
        ]


def _big_source(source, rows: int = 200_000) -> None:
    """About 7 MB of dump, so some 25 chunks of the chunked store: a load that takes several intervals."""
    with source.connect() as connection:
        connection.execute("CREATE TABLE bulk (id int PRIMARY KEY, payload text NOT NULL)")
        connection.execute(
            "INSERT INTO bulk SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, %s) g", (rows,)
        )


def test_progress_reaches_the_row_every_interval_while_the_database_loads(harness, apps):
    source, target = apps
    services = harness.services
    _big_source(source)
    backup_id = harness.backup(source.environment_id, ADA)
    services.restore_steps.hooks.dump_stream = _slow_stream
    operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)

    with Sampler(lambda: services.restores.get(operation.id)) as sampler:
        harness.drain()
    done = services.restores.get(operation.id)
    assert done.status is OperationStatus.FINISHED, done.error

    loading = sampler.loading()
    times = [at for at, _ in loading]
    assert len(loading) >= 3, (
        f"the load showed {len(loading)} changes of progress: {[o.step('switch').progress for _, o in loading]}"
    )
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert max(gaps) <= INTERVAL + SLACK, f"progress stood still for {max(gaps):.2f}s (gaps {gaps})"
    bytes_seen = [operation.step("switch").progress.bytes_done for _, operation in loading]
    assert bytes_seen == sorted(bytes_seen)
    assert len(set(bytes_seen)) == len(bytes_seen)
    print(
        f"progress changes while loading: {len(loading)}, "
        f"largest gap {max(gaps):.2f}s, mean {sum(gaps) / len(gaps):.2f}s"
    )


def test_the_load_reports_tables_done_of_total(harness, apps):
    """The database adapter reports each table pg_restore loads (``on_load``): the step shows N of M."""
    source, target = apps
    services = harness.services
    _big_source(source)
    backup_id = harness.backup(source.environment_id, ADA)
    services.restore_steps.hooks.dump_stream = _slow_stream
    operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    with Sampler(lambda: services.restores.get(operation.id)) as sampler:
        harness.drain()
    done = services.restores.get(operation.id)
    assert done.status is OperationStatus.FINISHED, done.error
    final = done.step("switch").progress
    assert final.tables_total is not None
    assert final.tables_total >= 3
    assert final.tables_done == final.tables_total
    assert any(operation.step("switch").progress.tables_total for _, operation in sampler.loading())


def _slow_index(source, rows: int = 2_000, pause: float = 0.005) -> None:
    """An index PostgreSQL takes ``pause`` a row to build in any database but the source (its expression
    sleeps): a load that spends its time in the server after the dump is read, as a big table's indexes do."""
    with source.connect() as connection:
        database = connection.execute("SELECT current_database()").fetchone()[0]
        connection.execute(
            "CREATE FUNCTION slow_key(id int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN "
            f"IF current_database() <> '{database}' THEN PERFORM pg_sleep({pause}); END IF; RETURN id; END $$"
        )
        connection.execute("CREATE TABLE slow (id int PRIMARY KEY)")
        connection.execute("INSERT INTO slow SELECT generate_series(1, %s)", (rows,))
        connection.execute("CREATE INDEX slow_by_key ON slow (slow_key(id))")


@pytest.mark.parametrize("where", ["reading the dump", "in the server"])
def test_a_cancel_during_the_load_takes_effect_within_the_interval_and_leaves_the_target_as_before(
    harness, apps, where
):
    source, target = apps
    services = harness.services
    if where == "reading the dump":
        _big_source(source)
        services.restore_steps.hooks.dump_stream = _slow_stream
    else:
        _slow_index(source)
    backup_id = harness.backup(source.environment_id, ADA)
    before = fingerprint(target.dsn)
    operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    asked: dict[str, float] = {}

    def cancel_mid_load(current: Operation) -> None:
        switch = current.step("switch")
        if "at" in asked or switch.status is not StepStatus.RUNNING or not switch.progress.bytes_done:
            return
        if where == "reading the dump" and switch.progress.bytes_done * 3 < (switch.progress.bytes_total or 0):
            return
        if where == "in the server":
            first = asked.setdefault("loading", time.monotonic())
            if time.monotonic() - first < 1.0:  # well into the index's build
                return
        services.restores.cancel(operation.id, BOB)
        asked["at"] = time.monotonic()

    with Sampler(lambda: services.restores.get(operation.id), act=cancel_mid_load) as sampler:
        harness.drain()
    cancelled = services.restores.get(operation.id)
    assert "at" in asked, "the load ended before the test could cancel it"
    assert cancelled.status is OperationStatus.CANCELLED, cancelled.error
    assert cancelled.step("switch").status is StepStatus.CANCELLED
    stopped = next(at for at, seen in sampler.seen if seen.step("switch").status is StepStatus.CANCELLED)
    latency = stopped - asked["at"]
    print(f"cancel {where}: the switch step was Cancelled {latency:.2f}s after the request")
    assert latency <= INTERVAL + KILL + SLACK, f"the cancel took {latency:.2f}s to stop the load"
    after = fingerprint(target.dsn)
    assert not before.differences(after), before.differences(after)
