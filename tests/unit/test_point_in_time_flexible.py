"""Point in time on Azure Database for PostgreSQL flexible server (shared/adapters/pointintime/flexible.py),
against a fake of the management API at the client seam (tests/support/flexible_servers.py): the window from
the server's earliest restore date, a temporary server restored beside the source with the right request and
read with the environment's login, refusals before anything is asked of Azure, Azure's reason when a restore
fails, and no server left behind — after a stop, a failure, a crash, or a worker that died mid-backup."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.pointintime import (
    InstantRefused,
    PointInTimeError,
    PointInTimeStopped,
    RecoveryWindow,
    TemporaryInstance,
)
from shared.adapters.pointintime.flexible import (
    TAG,
    FlexibleServerId,
    FlexibleServerManagement,
    FlexibleServerPointInTime,
)
from shared.adapters.pointintime.memory import MemoryPointInTime
from shared.adapters.postgres.memory import MemoryDatabases, Table
from shared.bootstrap import ArchiveFromSettings, PointInTimeByServer, point_in_time_from_settings
from shared.clients import StorageClients
from shared.config import FLEXIBLE_SERVERS, Settings
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus
from shared.domain.environments import DatabaseConnection
from tests.support.core import CoreWorld
from tests.support.flexible_servers import SUBSCRIPTION, FakeFlexibleServers, FakeServer

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
EARLIEST = NOW - timedelta(days=7)
GROUP = "rg-apps"
NETWORK = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-net/providers/Microsoft.Network"
SUBNET = f"{NETWORK}/virtualNetworks/vnet/subnets/pg"
ZONE = f"{NETWORK}/privateDnsZones/pg.private.postgres.database.azure.com"
LOGIN = DatabaseConnection(
    host="prod-pg.postgres.database.azure.com",
    database="app",
    user="appuser",
    password_setting="PROD_DB_PASSWORD",
    ssl_mode="require",
)
INSTANT = NOW - timedelta(hours=3)
ADA = Principal(id="ada", name="Ada")


class Crash(BaseException):
    """The worker process dies here: nothing after it runs, no clean-up either."""


def clients(fake: FakeFlexibleServers) -> Callable[[str], FlexibleServerManagement]:
    def client(subscription: str) -> FlexibleServerManagement:
        assert subscription == fake.subscription
        return fake  # type: ignore[return-value]

    return client


def flexible(fake: FakeFlexibleServers, resource_id: str, **options: object) -> FlexibleServerPointInTime:
    return FlexibleServerPointInTime(
        {"prod": resource_id},
        clients(fake),
        clock=lambda: NOW,
        poll=0,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def fake() -> FakeFlexibleServers:
    return FakeFlexibleServers()


@pytest.fixture
def source(fake: FakeFlexibleServers) -> FlexibleServerPointInTime:
    return flexible(fake, fake.add_server(GROUP, "prod-pg", earliest_restore=EARLIEST, databases=("app",)))


def no_temporary_server(fake: FakeFlexibleServers) -> bool:
    return [server.name for server in fake.existing()] == ["prod-pg"]


# -- the window ----------------------------------------------------------------------------------------


def test_the_window_runs_from_the_earliest_restore_date_to_now_less_azures_restore_lag(fake, source):
    assert source.window("prod") == RecoveryWindow(EARLIEST, NOW - timedelta(minutes=5))
    later = flexible(fake, fake.server("prod-pg").id, restore_lag=timedelta(minutes=12))
    assert later.window("prod").latest == NOW - timedelta(minutes=12)


def test_a_server_without_a_restore_point_yet_has_no_window(fake):
    new = flexible(fake, fake.add_server(GROUP, "new-pg", earliest_restore=None))
    assert new.window("prod") == RecoveryWindow(None, None)
    young = flexible(fake, fake.add_server(GROUP, "young-pg", earliest_restore=NOW - timedelta(minutes=2)))
    window = young.window("prod")
    assert window == RecoveryWindow(None, None)
    assert window.refusal(NOW - timedelta(minutes=1)) is not None


def test_a_server_azure_does_not_know_is_a_lasting_error_naming_it(fake):
    missing = flexible(fake, str(FlexibleServerId(SUBSCRIPTION, GROUP, "gone-pg")))
    with pytest.raises(PointInTimeError, match="gone-pg does not exist") as raised:
        missing.window("prod")
    assert raised.value.transient is False
    with pytest.raises(PointInTimeError, match=FLEXIBLE_SERVERS):
        missing.window("not-configured")


# -- as of an instant ----------------------------------------------------------------------------------


def test_a_temporary_server_is_restored_beside_the_source_read_with_the_login_and_deleted(fake, source):
    recorded: list[TemporaryInstance] = []

    def started(instance: TemporaryInstance) -> None:
        assert fake.restore_requests == [], "recorded before Azure is asked for the server"
        recorded.append(instance)

    with source.as_of("prod", INSTANT, "app", on_started=started, login=LOGIN) as connection:
        [temporary] = fake.temporary()
        assert temporary.state == "Ready"
        assert temporary.resource_group == GROUP
        assert temporary.name.startswith("prod-pg-pitr-20261210090000-")
        assert len(temporary.name) <= 63
        assert connection == replace(LOGIN, host=f"{temporary.name}.postgres.database.azure.com")
        assert recorded == [TemporaryInstance(server_resource_id=temporary.id)]
        [request] = fake.restore_requests
        assert request.create_mode == "PointInTimeRestore"
        assert request.point_in_time_utc == INSTANT
        assert request.source_server_resource_id == fake.server("prod-pg").id
        assert request.location == "westeurope"
        assert request.tags == {TAG: "prod-pg"}
        assert request.network is None  # a public server's copy is public too
        body = json.loads(json.dumps(request.as_dict()))  # what goes on the wire
        assert body["properties"]["createMode"] == "PointInTimeRestore"
        assert datetime.fromisoformat(body["properties"]["pointInTimeUTC"]) == INSTANT
    assert no_temporary_server(fake)


def test_a_server_in_a_virtual_network_is_restored_into_its_subnet_and_private_dns_zone(fake):
    resource_id = fake.add_server(
        GROUP, "prod-pg", earliest_restore=EARLIEST, databases=("app",), delegated_subnet=SUBNET, private_dns_zone=ZONE
    )
    with flexible(fake, resource_id).as_of("prod", INSTANT, "app", login=LOGIN):
        [request] = fake.restore_requests
        assert request.network is not None
        assert (request.network.delegated_subnet_resource_id, request.network.private_dns_zone_arm_resource_id) == (
            SUBNET,
            ZONE,
        )
        [temporary] = fake.temporary()
        assert temporary.delegated_subnet == SUBNET
    assert not any(call.startswith("firewall_rules") for call in fake.calls)
    assert no_temporary_server(fake)


def test_a_public_servers_firewall_rules_are_given_to_its_copy(fake):
    rules = {"functions-outbound": ("20.1.2.3", "20.1.2.9"), "office": ("198.51.100.7", "198.51.100.7")}
    resource_id = fake.add_server(GROUP, "prod-pg", earliest_restore=EARLIEST, databases=("app",), firewall_rules=rules)
    with flexible(fake, resource_id).as_of("prod", INSTANT, "app", login=LOGIN):
        [temporary] = fake.temporary()
        assert temporary.firewall_rules == rules
    assert no_temporary_server(fake)


def test_an_instant_outside_the_window_is_refused_before_anything_is_recorded(fake, source):
    recorded: list[TemporaryInstance] = []
    for instant in (EARLIEST - timedelta(seconds=1), NOW - timedelta(minutes=4)):
        reading = source.as_of("prod", instant, "app", on_started=recorded.append, login=LOGIN)
        with pytest.raises(InstantRefused, match="outside the recovery window"), reading:
            pass
    assert recorded == []
    assert fake.restore_requests == []


def test_a_database_that_did_not_exist_then_is_an_error_and_its_server_goes(fake, source):
    reading = source.as_of("prod", INSTANT, "billing", login=LOGIN)
    with pytest.raises(PointInTimeError, match=r"Database billing did not exist on prod at") as raised, reading:
        pass
    assert raised.value.transient is False
    assert no_temporary_server(fake)


def test_a_failed_restore_names_azures_reason_and_leaves_no_server(fake, source):
    fake.fail_next_restore = ("InternalServerError", "The restore could not be completed: storage quota exceeded.")
    with pytest.raises(PointInTimeError) as raised, source.as_of("prod", INSTANT, "app", login=LOGIN):
        pass
    assert "Azure could not restore prod-pg to 2026-12-10T09:00:00+00:00" in str(raised.value)
    assert "storage quota exceeded. (InternalServerError)" in str(raised.value)
    assert no_temporary_server(fake)  # Azure left the failed server; it was deleted


def test_a_stop_while_azure_restores_deletes_the_server_once_azure_lets_it(fake, source):
    fake.restore_ticks = 8
    stop = threading.Event()
    fake.on_tick = lambda tick: stop.set() if fake.temporary() else None
    with pytest.raises(PointInTimeStopped), source.as_of("prod", INSTANT, "app", login=LOGIN, stop=stop):
        pass
    deletions = [call for call in fake.calls if call.startswith("servers.begin_delete")]
    assert len(deletions) > 1  # refused while the restore ran, asked again
    assert no_temporary_server(fake)


def test_reading_the_past_needs_the_environments_login(fake, source):
    with pytest.raises(PointInTimeError, match="needs the environment's login"), source.as_of("prod", INSTANT, "app"):
        pass
    assert fake.restore_requests == []


# -- release: whatever a crash left --------------------------------------------------------------------


def test_release_deletes_the_server_a_crashed_reader_left(fake, source):
    recorded: list[TemporaryInstance] = []
    reading = source.as_of("prod", INSTANT, "app", on_started=recorded.append, login=LOGIN)
    reading.__enter__()  # the process dies while it reads: its context never ends
    assert len(fake.temporary()) == 1
    stored = json.loads(json.dumps(recorded[0].record()))  # as the operation's row keeps it
    another_worker = flexible(fake, fake.server("prod-pg").id)
    another_worker.release(TemporaryInstance.from_record(stored))
    assert no_temporary_server(fake)
    another_worker.release(TemporaryInstance.from_record(stored))  # again: harmless


def test_release_is_harmless_when_the_crash_came_before_azure_was_asked(fake, source):
    recorded: list[TemporaryInstance] = []

    def record_then_die(instance: TemporaryInstance) -> None:
        recorded.append(instance)
        raise Crash

    with pytest.raises(Crash), source.as_of("prod", INSTANT, "app", on_started=record_then_die, login=LOGIN):
        pass
    assert fake.restore_requests == []
    source.release(recorded[0])
    assert no_temporary_server(fake)


def test_release_deletes_a_server_a_dead_worker_left_being_restored(fake, source):
    """The worker hangs for good while Azure restores (killed, its lease lost); another releases its record:
    Azure refuses the deletion until the restore ends, then the server goes."""
    fake.restore_ticks = 6
    recorded: list[TemporaryInstance] = []
    hung, resume = threading.Event(), threading.Event()
    outcome: list[BaseException] = []

    def worker() -> None:
        try:
            with source.as_of("prod", INSTANT, "app", on_started=recorded.append, login=LOGIN):
                pass
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=worker, daemon=True)

    def hang_in_the_worker(tick: int) -> None:
        if threading.current_thread() is thread and fake.temporary():
            hung.set()
            resume.wait(timeout=10)

    fake.on_tick = hang_in_the_worker
    thread.start()
    assert hung.wait(timeout=10)
    assert fake.temporary()[0].state == "Provisioning"
    flexible(fake, fake.server("prod-pg").id).release(recorded[0])
    assert no_temporary_server(fake)
    resume.set()  # a worker that was only slow finds its server gone
    thread.join(timeout=10)
    assert [type(error) for error in outcome] == [PointInTimeError]
    assert no_temporary_server(fake)


def test_release_deletes_only_temporary_servers_of_its_sources(fake, source):
    production = fake.server("prod-pg")
    lookalike = production.id.replace("flexibleServers/prod-pg", "flexibleServers/prod-pg-pitr-20261210090000-abcdef")
    elsewhere = lookalike.replace(f"resourceGroups/{GROUP}", "resourceGroups/rg-other")
    for record in (
        TemporaryInstance(server_resource_id=production.id),
        TemporaryInstance(server_resource_id=elsewhere),
        TemporaryInstance(directory="/tmp/appbackups-pointintime/x", port=5433),
    ):
        with pytest.raises(ValueError, match="not a temporary"):
            source.release(record)
    assert fake.existing() == [production]
    assert not any(call.startswith("servers.begin_delete") for call in fake.calls)
    source.release(TemporaryInstance(server_resource_id=lookalike))  # ours by its name, gone already: harmless


def test_records_of_before_temporary_servers_still_read():
    old = {"directory": "/tmp/appbackups-pointintime/prod-1a2b3c4d", "port": 54321}
    assert TemporaryInstance.from_record(old) == TemporaryInstance("/tmp/appbackups-pointintime/prod-1a2b3c4d", 54321)
    assert TemporaryInstance.from_record(TemporaryInstance(old["directory"], 54321).record()) == TemporaryInstance(
        old["directory"], 54321
    )
    server = TemporaryInstance(server_resource_id="/subscriptions/s/resourceGroups/g/providers/x/flexibleServers/n")
    assert TemporaryInstance.from_record(json.loads(json.dumps(server.record()))) == server


# -- a backup of the past through the engine, and its worker dying -------------------------------------


class Killable:
    """The source as a killed process sees it: a Crash runs no clean-up, so the temporary server stays."""

    def __init__(self, inner: FlexibleServerPointInTime) -> None:
        self.inner = inner
        self.dead: list[object] = []  # the contexts a Crash left: kept, so that no finaliser cleans up after them

    def window(self, server: str) -> RecoveryWindow:
        return self.inner.window(server)

    def release(self, instance: TemporaryInstance) -> None:
        self.inner.release(instance)

    @contextmanager
    def as_of(self, *args: object, **options: object) -> Iterator[DatabaseConnection]:
        context = self.inner.as_of(*args, **options)  # type: ignore[arg-type]
        connection = context.__enter__()
        try:
            yield connection
        except Crash:
            self.dead.append(context)
            raise  # the process is gone: nothing deletes the server
        except BaseException as error:
            if not context.__exit__(type(error), error, error.__traceback__):
                raise
        else:
            context.__exit__(None, None, None)


def test_the_reaper_deletes_the_temporary_server_a_dead_backup_left(fake):
    world = CoreWorld(development_mode=True)
    app = world.app(point_in_time=True)
    app.capture_files()
    databases: MemoryDatabases = world.databases
    tables = {name: Table(table.columns, list(table.rows)) for name, table in app.database.tables.items()}
    resource_id = fake.add_server(
        GROUP, "prod-pg", earliest_restore=world.clock.now, databases=(app.connection.database,)
    )

    def restored(server: FakeServer) -> None:  # the copy holds the database as it was
        databases.create(replace(app.connection, host=server.model().fully_qualified_domain_name), tables)

    fake.on_restored = restored
    source = FlexibleServerPointInTime({app.server: resource_id}, clients(fake), clock=world.clock, poll=0)
    world.services.past.source = source
    steps = world.services.backup_steps
    steps._point_in_time = Killable(source)
    world.clock.advance(3600)
    instant = world.clock.now - timedelta(minutes=30)

    def die(snapshot: object) -> None:
        raise Crash

    steps.hooks.after_snapshot_exported = die
    backup = world.services.backups.request(app.environment_id, ADA, point_in_time=instant)
    with pytest.raises(Crash):
        world.simulator.deliver_one()
    [left] = fake.temporary()  # the dead worker's server, still billed
    operation = world.services.operations.get(str(backup.operation_id))
    assert operation.step("dump").output["temporaryInstance"]["serverResourceId"] == left.id

    world.simulator.pending.clear()  # its watchdog is lost too: only the reaper is left
    world.queue.sent.clear()
    world.clock.advance(600)
    report = world.services.reaper.reap()
    assert [woken.id for woken in report.woken] == [operation.id]
    assert no_temporary_server(fake)  # deleted before the operation was woken

    steps.hooks.after_snapshot_exported = None
    world.settle(operation.id)  # the resumed step restores again, dumps, and deletes that server too
    finished = world.services.backup_catalog.get(app.environment_id, backup.id)
    assert (finished.status, finished.point_in_time) == (BackupStatus.FINISHED, instant)
    assert len(fake.restore_requests) == 2
    assert all(request.point_in_time_utc == instant for request in fake.restore_requests)
    assert no_temporary_server(fake)


# -- wiring ------------------------------------------------------------------------------------------


def test_the_settings_send_flexible_servers_to_azure_and_the_rest_to_the_archive(fake):
    earliest = datetime(2020, 1, 1, tzinfo=UTC)  # the service's own clock reads this window
    resource_id = fake.add_server(GROUP, "prod-pg", earliest_restore=earliest, databases=("app",))
    environ = {"BackupStorage": "UseDevelopmentStorage=true"}
    clients_of_storage = StorageClients(Settings.from_environ(environ).storage)
    plain = point_in_time_from_settings(Settings.from_environ(environ), clients_of_storage)
    assert isinstance(plain, ArchiveFromSettings)

    settings = Settings.from_environ({**environ, FLEXIBLE_SERVERS: json.dumps({"prod": resource_id})})
    routed = point_in_time_from_settings(settings, clients_of_storage, clients(fake))
    assert isinstance(routed, PointInTimeByServer)
    assert routed.flexible.serves("prod")
    assert routed.window("prod").earliest == earliest

    archive = MemoryPointInTime(MemoryDatabases())
    archive.base_backup("self-managed", EARLIEST)
    router = PointInTimeByServer(routed.flexible, archive)
    assert router.window("self-managed") == RecoveryWindow(EARLIEST, EARLIEST)
    router.release(TemporaryInstance(directory="memory:/pointintime/self-managed/1", port=50001))  # the archive's
    assert not any(call.startswith("servers.begin_delete") for call in fake.calls)


def test_a_flexible_server_setting_that_is_not_a_resource_id_is_refused_naming_it():
    environ = {"BackupStorage": "UseDevelopmentStorage=true", FLEXIBLE_SERVERS: '{"prod": "prod-pg"}'}
    with pytest.raises(ValueError, match=f"{FLEXIBLE_SERVERS} maps 'prod' to 'prod-pg'"):
        Settings.from_environ(environ)
