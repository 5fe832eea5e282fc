"""Backup slots per database server on Azurite's Table Storage: workers racing for a server's slots get at
most N of them (ETag-guarded claims), and a dead worker's slot frees within its lease."""

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from azure.data.tables import TableServiceClient

from shared.adapters.tables import AzureRowTable
from shared.backups.slots import ServerSlots
from shared.clock import utc_now
from shared.domain.access import Principal
from shared.domain.operations import Operation, OperationStatus, Step, StepStatus

SERVER = "10.0.0.7:5432"


@pytest.fixture
def table(storage_connection_string: str) -> Iterator[AzureRowTable]:
    service = TableServiceClient.from_connection_string(storage_connection_string)
    name = "slots" + uuid.uuid4().hex[:12]
    yield AzureRowTable(service.create_table(name))
    service.delete_table(name)


def running(operation_id: str, lease: timedelta) -> Operation:
    now = utc_now()
    return Operation(
        id=operation_id,
        kind="backup",
        status=OperationStatus.RUNNING,
        environment_id="env",
        namespace="ns",
        created_on=now,
        updated_on=now,
        created_by=Principal(id="scheduler", name="scheduler"),
        steps=(Step(name="dump", title="Dump", status=StepStatus.RUNNING),),
        lease_owner="worker",
        lease_until=now + lease,
    )


def test_workers_racing_for_a_servers_slots_get_at_most_n_and_a_dead_workers_slot_frees(table: AzureRowTable):
    operations = {f"op-{n}": running(f"op-{n}", timedelta(minutes=5)) for n in range(12)}
    operations["op-0"] = running("op-0", timedelta(seconds=2))  # this worker will die
    slots = ServerSlots(table, operations.get, 3, utc_now)
    assert slots.take(SERVER, "op-0") is not None

    with ThreadPoolExecutor(11) as pool:
        taken = list(pool.map(lambda n: slots.take(SERVER, f"op-{n}"), range(1, 12)))
    winners = [n + 1 for n, slot in enumerate(taken) if slot is not None]
    assert len(winners) == 2  # one slot of three is op-0's
    assert len({slot for slot in taken if slot is not None}) == 2
    assert len(slots.holders(SERVER)) == 3

    loser = next(f"op-{n}" for n in range(1, 12) if n not in winners)
    assert slots.take(SERVER, loser) is None
    time.sleep(2.2)  # op-0's worker never renewed its lease
    assert slots.take(SERVER, loser) is not None
    assert sorted(holder.operation_id for holder in slots.holders(SERVER)) == sorted(
        [loser, *(f"op-{n}" for n in winners)]
    )
