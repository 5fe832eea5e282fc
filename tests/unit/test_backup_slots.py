"""Backup slots per database server on the twins: at most N backups read a server at once; the others wait
(never fail); a slot whose worker died frees when its operation's lease runs out."""

from datetime import timedelta

from shared.adapters.tables import MemoryRowTable
from shared.backups.slots import ServerSlots
from shared.backups.steps import BackupHooks
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus
from shared.domain.operations import Operation, OperationStatus, Step, StepStatus
from tests.support.core import CoreWorld
from tests.support.memory import ManualClock

ADA = Principal(id="ada", name="Ada")
SERVER = "db.example.com:5432"


class Operations:
    """Operations by id, each running its dump step under a lease until the test says otherwise."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.by_id: dict[str, Operation] = {}

    def running(self, operation_id: str, lease_seconds: float = 60) -> str:
        now = self.clock()
        self.by_id[operation_id] = Operation(
            id=operation_id,
            kind="backup",
            status=OperationStatus.RUNNING,
            environment_id="env",
            namespace="ns",
            created_on=now,
            updated_on=now,
            created_by=ADA,
            steps=(Step(name="dump", title="Dump", status=StepStatus.RUNNING), Step(name="finish", title="Finish")),
            lease_owner="worker",
            lease_until=now + timedelta(seconds=lease_seconds),
        )
        return operation_id

    def find(self, operation_id: str) -> Operation | None:
        return self.by_id.get(operation_id)


def slots(per_server: int = 2) -> tuple[ServerSlots, Operations, ManualClock]:
    clock = ManualClock()
    operations = Operations(clock)
    return ServerSlots(MemoryRowTable("schedules"), operations.find, per_server, clock), operations, clock


def test_at_most_n_backups_hold_a_slot_of_one_server_and_a_released_slot_is_taken_again():
    server_slots, operations, _ = slots(per_server=2)
    first, second, third = (operations.running(name) for name in ("a", "b", "c"))
    assert server_slots.take(SERVER, first) is not None
    assert server_slots.take(SERVER, second) is not None
    assert server_slots.take(SERVER, third) is None
    assert server_slots.take("other.example.com:5432", third) is not None  # another server has its own slots
    assert sorted(holder.operation_id for holder in server_slots.holders(SERVER)) == ["a", "b"]
    server_slots.release(SERVER, first)
    assert server_slots.take(SERVER, third) is not None
    assert sorted(holder.operation_id for holder in server_slots.holders(SERVER)) == ["b", "c"]


def test_a_repeat_of_the_same_backup_gets_the_slot_it_holds():
    server_slots, operations, _ = slots(per_server=1)
    first = operations.running("a")
    slot = server_slots.take(SERVER, first)
    assert server_slots.take(SERVER, first) == slot
    assert server_slots.take(SERVER, operations.running("b")) is None


def test_the_slot_of_a_worker_that_died_frees_when_its_lease_runs_out():
    server_slots, operations, clock = slots(per_server=1)
    dead = operations.running("dead", lease_seconds=120)
    assert server_slots.take(SERVER, dead) is not None
    waiting = operations.running("waiting", lease_seconds=600)
    assert server_slots.take(SERVER, waiting) is None
    clock.advance(119)
    assert server_slots.take(SERVER, waiting) is None
    clock.advance(2)  # the dead worker never renewed: its lease is over
    assert server_slots.take(SERVER, waiting) is not None
    assert [holder.operation_id for holder in server_slots.holders(SERVER)] == ["waiting"]


def test_a_backup_that_left_its_dump_step_holds_no_slot():
    server_slots, operations, _ = slots(per_server=1)
    done = operations.running("done")
    server_slots.take(SERVER, done)
    record = operations.by_id[done]
    operations.by_id[done] = record.with_step(0, status=StepStatus.FINISHED)
    assert server_slots.take(SERVER, operations.running("next")) is not None


def test_no_limit_when_the_setting_is_zero():
    server_slots, operations, _ = slots(per_server=0)
    assert all(server_slots.take(SERVER, operations.running(str(n))) is not None for n in range(20))


def test_a_backup_whose_server_is_full_waits_for_a_slot_and_then_finishes():
    world = CoreWorld(backups_per_database_server=1)
    first_app, second_app = world.app(documents=2), world.app(documents=2)  # both on the server memory:5432
    made: list[str] = []
    seen: list[Operation] = []

    def meanwhile(exported: object) -> None:  # while the first backup dumps, a second one's worker comes
        world.services.backup_steps.hooks = BackupHooks()
        second = world.services.backups.request(second_app.environment_id, ADA)
        made.append(second.id)
        world.services.operations.handle(str(second.operation_id))
        seen.append(world.services.operations.get(str(second.operation_id)))

    world.services.backup_steps.hooks = BackupHooks(after_snapshot_exported=meanwhile)
    first = world.services.backups.request(first_app.environment_id, ADA)
    world.settle(str(first.operation_id))
    [waiting] = seen
    dump = waiting.step("dump")
    assert dump.status is StepStatus.PENDING
    assert dump.message == "waiting for a slot on memory:5432"
    assert dump.progress.detail == "waiting for a slot on memory:5432"
    assert dump.attempts == 0  # waiting is not a failed attempt
    assert waiting.status is OperationStatus.RUNNING
    assert waiting.ending is None
    assert world.services.backup_catalog.get(first_app.environment_id, first.id).status is BackupStatus.FINISHED
    world.settle(waiting.id)
    second = world.services.backup_catalog.get(second_app.environment_id, made[0])
    assert second.status is BackupStatus.FINISHED, second.status_message
    assert world.services.backup_steps.slots is not None
    assert world.services.backup_steps.slots.holders("memory:5432") == []
