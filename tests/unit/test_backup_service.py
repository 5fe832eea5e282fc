from datetime import timedelta

import pytest

from shared.adapters.errors import StorageFault
from shared.adapters.queues import MemoryWorkQueue
from shared.bootstrap import build_services
from shared.config import Settings, StorageConnection
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus, Tier, is_backup_id, new_backup_id
from shared.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable
from tests.support.memory import SteppingClock
from tools.azurite import connection_string

ADA = Principal(id="ada", name="Ada")


class BrokenQueue:
    def send(self, message, *, delay_seconds=0):
        raise StorageFault("queue down")


def make(queue):
    from shared.adapters.tables import MemoryRowTable

    tables: dict = {}
    clock = SteppingClock()
    services = build_services(
        Settings(storage=StorageConnection(connection_string=connection_string(1, 1, 1))),
        tables=lambda name: tables.setdefault(name, MemoryRowTable(name)),
        queues=lambda name: queue,
        clock=clock,
    )
    body = EnvironmentBody.model_validate(
        {
            "namespace": "ns",
            "appName": "app",
            "displayName": "P",
            "state": "Running",
            "database": {"host": "h", "database": "d", "user": "u"},
            "files": {"container": "files"},
            "modelVersion": "3.1",
            "deploymentPackage": "app_3.1.mda",
        }
    )
    services.environments.put("prod", body.to_registration(), ADA)
    return services, clock


def test_a_request_records_a_processing_backup_and_queues_it():
    queue = MemoryWorkQueue()
    services, _ = make(queue)
    backup = services.backups.request("prod", ADA, comment="hello")
    assert backup.status is BackupStatus.PROCESSING
    assert (backup.tier, backup.comment, backup.namespace) == (Tier.MANUAL, "hello", "ns")
    assert (backup.model_version, backup.deployment_package) == ("3.1", "app_3.1.mda")
    assert backup.expires_on == backup.created_on + timedelta(days=14)
    assert queue.messages == [{"kind": "operation", "operationId": backup.operation_id}]
    operation = services.operations.get(str(backup.operation_id))
    assert (operation.kind, operation.backup_id, operation.parameters["tier"]) == ("backup", backup.id, "manual")


def test_a_queue_outage_fails_the_snapshot_and_answers_503():
    services, _ = make(BrokenQueue())
    with pytest.raises(ServiceUnavailable):
        services.backups.request("prod", ADA)
    backups, _ = services.backups.page("prod", limit=10, continuation=None)
    assert [s.status for s in backups] == [BackupStatus.FAILED]
    entries, _ = services.activity.page("prod", limit=1, continuation=None)
    assert entries[0].outcome.value == "FAILED"


def test_backup_ids_are_uuids_that_sort_newest_first():
    clock = SteppingClock(step=timedelta(milliseconds=1))
    ids = [new_backup_id(clock()) for _ in range(50)]
    assert all(is_backup_id(value) for value in ids)
    assert sorted(ids) == list(reversed(ids))
    assert len(set(ids)) == 50
    assert not is_backup_id("not-a-uuid")
    assert not is_backup_id(ids[0].upper())


def test_edit_pins_and_unpins_and_refuses_the_past():
    services, clock = make(MemoryWorkQueue())
    backup = services.backups.request("prod", ADA)
    later = clock.now + timedelta(days=90)
    pinned = services.backups.edit("prod", backup.id, ADA, keep_until=later)
    assert pinned.retained_until == later
    unpinned = services.backups.edit("prod", backup.id, ADA, keep_until=None)
    assert unpinned.retained_until == unpinned.expires_on
    with pytest.raises(Unprocessable):
        services.backups.edit("prod", backup.id, ADA, keep_until=clock.now - timedelta(days=1))
    earlier = clock.now + timedelta(days=1)
    assert services.backups.edit("prod", backup.id, ADA, keep_until=earlier).retained_until == backup.expires_on


def test_unknown_and_processing_backups():
    services, _ = make(MemoryWorkQueue())
    with pytest.raises(NotFound):
        services.backups.get("prod", new_backup_id(SteppingClock()()))
    with pytest.raises(NotFound):
        services.backups.get("nope", new_backup_id(SteppingClock()()))
    backup = services.backups.request("prod", ADA)
    with pytest.raises(Conflict) as caught:
        services.backups.delete("prod", backup.id, ADA)
    assert caught.value.code == "backup_processing"
