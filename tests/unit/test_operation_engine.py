"""The one engine on its in-memory twins: steps, checkpoints, retries, the watchdog that resumes a dead
worker's step, duplicates and stale messages, cancel, the undo step, liveness and the reaper."""

import time
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.adapters.queues import MemoryWorkQueue
from shared.adapters.tables import MemoryRowTable
from shared.catalog.operations import OperationCatalog
from shared.contracts.operations import JobStatus, OperationView, StepState
from shared.domain.backups import Actor
from shared.domain.operations import UNDO, OperationStatus, StepStatus
from shared.errors import Conflict
from shared.faults import Fault
from shared.operations.engine import EngineSettings, OperationDefinition, OperationEngine, StepDefinition, WaitLater
from tests.support.memory import ManualClock, QueueSimulator

ADA = Actor("ada", "Ada")
BOB = Actor("bob", "Bob")
LEASE = timedelta(minutes=2)
SLACK = timedelta(seconds=5)


class Crash(BaseException):
    """The worker process dies: nothing after this point runs, no write, no message."""


class Script:
    """Steps whose behaviour the test sets; records every run."""

    def __init__(self):
        self.runs: list[str] = []
        self.failures: dict[str, list[BaseException]] = {}
        self.undo_failures: list[Exception] = []
        self.undone: list[tuple[str, OperationStatus | None]] = []
        self.during: dict[str, object] = {}

    def step(self, name):
        def run(context):
            self.runs.append(name)
            context.report(done=1, total=2, detail=name)
            context.checkpoint(**{f"{name}_seen": len(self.runs)})
            action = self.during.get(name)
            if action is not None:
                action(context)
            pending = self.failures.get(name)
            if pending:
                raise pending.pop(0)
            context.output["result"] = name.upper()

        return StepDefinition(name, name.title(), run)

    def undo(self, context):
        if self.undo_failures:
            raise self.undo_failures.pop(0)
        self.undone.append((context.operation.id, context.operation.ending))


@pytest.fixture
def world():
    clock = ManualClock()
    queue = MemoryWorkQueue()
    catalog = OperationCatalog(MemoryRowTable())
    settings = EngineSettings(
        max_attempts=3,
        retry_base=timedelta(seconds=5),
        lease=LEASE,
        watchdog_slack=SLACK,
        stale_after=timedelta(minutes=3),
    )
    engine = OperationEngine(catalog, queue, clock, settings)
    script = Script()
    engine.register(
        OperationDefinition(
            "toy",
            (script.step("first"), script.step("second"), script.step("third")),
            undo=StepDefinition(UNDO, "Undo", script.undo),
        )
    )
    simulator = QueueSimulator(queue, clock, lambda body: engine.handle(body["operationId"], watch=body.get("watch")))

    class World:
        pass

    w = World()
    w.clock, w.queue, w.catalog, w.engine, w.script, w.sim = clock, queue, catalog, engine, script, simulator
    w.operation = engine.new("toy", environment_id="env", namespace="ns", actor=ADA, parameters={"x": 1})
    engine.start(w.operation)
    return w


def get(w):
    return w.engine.get(w.operation.id)


def test_one_message_runs_every_step_in_order_and_checkpoints(world):
    body = world.sim.deliver_one()
    assert body == {"kind": "operation", "operationId": world.operation.id, "step": 0}
    done = get(world)
    assert done.status is OperationStatus.FINISHED
    assert done.announced
    assert world.script.runs == ["first", "second", "third"]
    assert [step.status for step in done.steps] == [StepStatus.FINISHED] * 3
    assert done.output("second", "result") == "SECOND"
    assert done.output("second", "second_seen") == 2
    assert done.lease_owner is None
    assert done.lease_until is None
    # The claim sent its watchdog, due when the lease would have run out; it finds nothing to do.
    watchdog = world.sim.seen[1]
    assert watchdog.body["watch"]
    assert watchdog.delay_seconds == (LEASE + SLACK).total_seconds()
    world.sim.run()
    assert world.script.runs == ["first", "second", "third"]


def test_beyond_the_inline_budget_the_next_step_goes_to_a_message(world):
    world.engine.settings = replace(world.engine.settings, inline_budget=timedelta(0))
    world.sim.deliver_one()
    assert world.script.runs == ["first"]
    assert get(world).lease_owner is None
    world.sim.run()
    assert world.script.runs == ["first", "second", "third"]
    assert get(world).status is OperationStatus.FINISHED


def test_a_transient_fault_is_retried_with_back_off(world):
    world.script.failures["second"] = [OSError("blip"), OSError("blip again")]
    world.sim.deliver_one()
    waiting = get(world)
    assert waiting.steps[1].status is StepStatus.PENDING
    assert waiting.steps[1].message.startswith("Attempt 1 of 3 failed")
    assert waiting.not_before == world.clock.now + timedelta(seconds=5)
    retry = [message for message in world.sim.seen[1:] if "watch" not in message.body]
    assert [message.delay_seconds for message in retry] == [5]
    view = OperationView.of(waiting, world.clock.now)
    assert view.steps[1].retry_on == waiting.not_before
    assert view.status is JobStatus.RUNNING
    world.sim.run()
    done = get(world)
    assert done.status is OperationStatus.FINISHED
    assert done.steps[1].attempts == 3
    assert done.steps[1].message == ""
    assert world.script.runs == ["first", "second", "second", "second", "third"]


def test_a_message_that_comes_early_waits_for_the_retry_time(world):
    world.script.failures["first"] = [OSError("blip")]
    world.sim.deliver_one()
    not_before = get(world).not_before
    world.engine.handle(world.operation.id)  # a duplicate, right away
    assert world.script.runs == ["first"]
    put_off = world.queue.sent[-1]
    assert put_off.delay_seconds == 5
    assert get(world).not_before == not_before


def test_a_permanent_failure_fails_the_operation_and_runs_its_undo(world):
    world.script.failures["second"] = [Fault("the dump is not a dump")]
    world.sim.deliver_one()
    failed = get(world)
    assert failed.status is OperationStatus.FAILED
    assert failed.error_step == "second"
    assert failed.error == "the dump is not a dump"
    assert [step.status for step in failed.steps] == [
        StepStatus.FINISHED,
        StepStatus.FAILED,
        StepStatus.PENDING,
        StepStatus.FINISHED,
    ]
    assert failed.steps[-1].name == UNDO
    assert world.script.undone == [(failed.id, OperationStatus.FAILED)]
    world.sim.run()
    assert len(world.script.undone) == 1


def test_a_step_that_keeps_failing_transiently_fails_after_its_attempts(world):
    world.script.failures["first"] = [OSError("down")] * 5
    world.sim.run()
    failed = get(world)
    assert failed.status is OperationStatus.FAILED
    assert failed.steps[0].attempts == 3
    assert world.script.runs == ["first"] * 3
    assert len(world.script.undone) == 1


def test_an_undo_that_fails_is_retried_with_back_off_until_it_is_done(world):
    world.script.failures["first"] = [Fault("no")]
    world.script.undo_failures = [OSError("table down")] * 6
    world.sim.deliver_one()
    undoing = get(world)
    assert undoing.status is OperationStatus.RUNNING
    assert undoing.ending is OperationStatus.FAILED
    view = OperationView.of(undoing, world.clock.now)
    assert view.undoing is OperationStatus.FAILED
    assert view.status is JobStatus.RUNNING
    world.sim.run(until=lambda: get(world).status is not OperationStatus.RUNNING)
    done = get(world)
    assert done.status is OperationStatus.FAILED
    assert done.steps[-1].attempts == 7
    assert done.steps[-1].status is StepStatus.FINISHED
    assert world.script.undone == [(done.id, OperationStatus.FAILED)]
    retries = [message.delay_seconds for message in world.sim.seen if "watch" not in message.body][1:]
    assert retries == [5, 10, 20, 40, 80, 160]  # doubling from 5 s, at most 5 minutes


def test_a_dead_workers_step_resumes_from_its_checkpoint_when_its_lease_runs_out(world):
    world.script.failures["second"] = [Crash()]
    with pytest.raises(Crash):
        world.sim.deliver_one()
    crashed_at = world.clock.now
    held = get(world)
    assert held.steps[1].status is StepStatus.RUNNING
    assert held.leased(world.clock.now)
    # While the lease is live, nothing shows Stalled and every other message is dropped.
    world.engine.handle(world.operation.id)
    assert world.script.runs == ["first", "second"]
    world.clock.advance(LEASE.total_seconds())
    stalled = OperationView.of(get(world), world.clock.now)
    assert stalled.status is JobStatus.STALLED
    assert stalled.steps[1].status is StepState.STALLED
    assert stalled.steps[1].stalled_since == held.lease_until
    world.clock.now = crashed_at
    world.sim.run()
    done = get(world)
    assert done.status is OperationStatus.FINISHED
    assert world.script.runs == ["first", "second", "second", "third"]
    assert done.steps[1].attempts == 2
    assert done.output("second", "second_seen") == 3  # the second run saw the first run's checkpoint and went on
    resumed = next(i for i, body in enumerate(world.sim.delivered) if body.get("watch"))
    assert resumed == 1  # the first message after the crash was the watchdog: nothing else resumed it


def test_the_watchdog_puts_itself_off_while_the_worker_checks_in(world):
    operation = get(world)
    held = world.catalog.save(
        replace(operation, lease_owner="live", lease_until=world.clock.now + timedelta(seconds=90))
    )
    world.queue.clear()
    world.engine.handle(held.id, watch="live")
    assert world.queue.sent[-1].body["watch"] == "live"
    assert world.queue.sent[-1].delay_seconds == 90 + SLACK.total_seconds()
    world.engine.handle(held.id, watch="someone-else")
    world.engine.handle(held.id)
    assert len(world.queue.sent) == 1  # other messages are dropped: the owner's watchdog covers it
    assert world.script.runs == []


def test_a_worker_that_keeps_dying_on_a_step_is_given_up_after_its_attempts(world):
    world.script.failures["first"] = [Crash(), Crash(), Crash()]
    for _ in range(3):
        with pytest.raises(Crash):
            world.sim.run()
    world.sim.run()
    failed = get(world)
    assert failed.status is OperationStatus.FAILED
    assert "stopped responding 3 times" in failed.error
    assert world.script.runs == ["first"] * 3
    assert len(world.script.undone) == 1


def test_duplicate_and_out_of_order_messages_have_no_second_effect(world):
    first = world.queue.pop().body
    world.engine.handle(first["operationId"])
    world.engine.handle(first["operationId"])
    world.engine.handle(first["operationId"], watch="stale-token")
    old_step_message = {"kind": "operation", "operationId": world.operation.id, "step": 0}
    world.engine.handle(old_step_message["operationId"])
    world.sim.run()
    assert world.script.runs == ["first", "second", "third"]
    assert get(world).status is OperationStatus.FINISHED


def test_cancel_of_a_running_step_stops_it_once_its_worker_next_writes(world):
    def cancel_meanwhile(context):
        world.engine.cancel(world.operation.id, BOB)
        context.checkpoint(half="done")  # a heartbeat does the same, every quarter of the lease
        context.report(detail="still going")
        world.script.runs.append("went on after the cancel")

    world.script.during["second"] = cancel_meanwhile
    world.sim.run()
    cancelled = get(world)
    assert cancelled.status is OperationStatus.CANCELLED
    assert cancelled.cancel_requested_by == BOB
    assert world.script.runs == ["first", "second"]
    assert cancelled.steps[1].status is StepStatus.CANCELLED
    assert cancelled.steps[2].status is StepStatus.PENDING
    assert world.script.undone == [(cancelled.id, OperationStatus.CANCELLED)]
    assert world.engine.cancel(world.operation.id, ADA).status is OperationStatus.CANCELLED  # idempotent


def test_a_step_blocked_in_work_that_watches_stopping_stops_within_the_progress_interval(world):
    """A database load blocks without reporting: the lease's thread reads the cancel and sets ``stopping``."""
    interval = timedelta(milliseconds=100)
    world.engine.settings = replace(world.engine.settings, progress_interval=interval)
    seen = {}

    def blocked(context):
        seen["before"] = context.stopping.is_set()
        world.engine.cancel(world.operation.id, BOB)
        seen["stopped"] = context.stopping.wait(interval.total_seconds() + 1.0)  # one wake, and scheduling slack

    world.script.during["second"] = blocked
    world.sim.run()
    cancelled = get(world)
    assert seen == {"before": False, "stopped": True}
    assert cancelled.status is OperationStatus.CANCELLED
    assert cancelled.steps[1].status is StepStatus.CANCELLED
    assert world.script.undone == [(cancelled.id, OperationStatus.CANCELLED)]


def test_a_step_sees_its_progress_in_the_row_within_the_progress_interval(world):
    interval = timedelta(milliseconds=100)
    world.engine.settings = replace(world.engine.settings, progress_interval=interval)
    seen = {}

    def loading(context):
        context.report(bytes_done=5, bytes_total=10, tables_done=1, tables_total=3)
        deadline = time.monotonic() + interval.total_seconds() + 1.0
        while time.monotonic() < deadline and get(world).steps[1].progress.tables_done != 1:
            time.sleep(0.01)
        seen["row"] = get(world).steps[1].progress

    world.script.during["second"] = loading
    world.sim.run()
    progress = seen["row"]
    assert (progress.bytes_done, progress.tables_done, progress.tables_total) == (5, 1, 3)


def test_cancel_of_an_operation_nobody_runs_undoes_it_on_the_next_message(world):
    world.script.failures["first"] = [OSError("blip")]
    world.sim.deliver_one()  # now waiting 5 s for its retry
    asked = world.engine.cancel(world.operation.id, BOB)
    assert asked.ending is OperationStatus.CANCELLED
    assert asked.not_before is None
    assert world.engine.cancel(world.operation.id, BOB).ending is OperationStatus.CANCELLED
    world.sim.run()
    assert get(world).status is OperationStatus.CANCELLED
    assert world.script.runs == ["first"]
    assert len(world.script.undone) == 1


def test_cancel_is_refused_after_the_point_of_no_return_and_after_the_end(world):
    world.script.during["second"] = lambda context: context.point_of_no_return("The database was switched.")
    world.script.failures["second"] = [OSError("blip")]
    world.sim.deliver_one()
    with pytest.raises(Conflict) as refused:
        world.engine.cancel(world.operation.id, BOB)
    assert refused.value.detail == "The database was switched."
    assert refused.value.code == "past_point_of_no_return"
    world.sim.run()
    with pytest.raises(Conflict) as ended:
        world.engine.cancel(world.operation.id, BOB)
    assert ended.value.code == "operation_ended"


def test_a_cancel_that_came_first_stops_a_step_at_its_point_of_no_return(world):
    def race(context):
        world.engine.cancel(world.operation.id, BOB)
        world.script.during.pop("second")
        context.point_of_no_return("too late")  # must refuse: the cancel won
        world.script.runs.append("passed the point of no return")

    world.script.during["second"] = race
    world.sim.run()
    assert get(world).status is OperationStatus.CANCELLED
    assert "passed the point of no return" not in world.script.runs
    assert get(world).no_return == ""


def test_a_step_can_wait_without_spending_an_attempt(world):
    waits = [WaitLater(10, "waiting for the child"), WaitLater(10, "waiting for the child")]
    world.script.failures["second"] = list(waits)
    world.sim.deliver_one()
    waiting = get(world)
    assert waiting.steps[1].status is StepStatus.PENDING
    assert waiting.steps[1].attempts == 0
    assert waiting.steps[1].message == "waiting for the child"
    assert waiting.not_before is None
    assert world.sim.seen[-1].delay_seconds == 10  # it looks again by then, or sooner when woken
    world.sim.run()
    done = get(world)
    assert done.status is OperationStatus.FINISHED
    assert done.steps[1].attempts == 1


def test_the_end_of_an_operation_wakes_the_one_that_waits_for_it(world):
    child = world.engine.new(
        "toy", environment_id="env", namespace="ns", actor=ADA, parameters={"parentOperationId": "the-parent"}
    )
    world.queue.clear()
    world.engine.handle(child.id)
    assert {"kind": "operation", "operationId": "the-parent"} in world.queue.messages


def test_what_follows_the_end_is_done_again_when_it_failed(world):
    calls = []

    def on_ended(operation):
        calls.append(operation.status)
        if len(calls) == 1:
            raise OSError("queue down")

    world.engine.register(replace(world.engine._definitions["toy"], on_ended=on_ended))
    world.sim.deliver_one()
    pending = get(world)
    assert pending.status is OperationStatus.FINISHED
    assert not pending.announced
    assert pending.open
    world.sim.run()
    assert calls == [OperationStatus.FINISHED, OperationStatus.FINISHED]
    assert get(world).announced
    assert not get(world).open


def test_the_reaper_wakes_what_nobody_touched_and_nothing_else(world):
    world.queue.clear()  # the start message was lost
    assert world.engine.reap() == []
    world.clock.advance(181)
    woken = world.engine.reap()
    assert [operation.id for operation in woken] == [world.operation.id]
    world.sim.run()
    assert get(world).status is OperationStatus.FINISHED
    world.clock.advance(600)
    assert world.engine.reap() == []


def test_the_reaper_leaves_a_leased_or_waiting_operation_alone(world):
    operation = get(world)
    world.catalog.save(replace(operation, lease_owner="w", lease_until=world.clock.now + timedelta(minutes=10)))
    world.clock.advance(300)
    assert world.engine.reap() == []
    waiting = get(world)
    world.catalog.save(replace(waiting, lease_owner=None, lease_until=None, not_before=world.clock.now + LEASE))
    assert world.engine.reap() == []


def test_abandon_runs_the_undo_unless_a_worker_holds_the_operation(world):
    held = world.catalog.save(replace(get(world), lease_owner="w", lease_until=world.clock.now + LEASE))
    assert world.engine.abandon(held.id, "poisoned") is None
    world.catalog.save(replace(get(world), lease_owner=None, lease_until=None))
    abandoned = world.engine.abandon(world.operation.id, "poisoned")
    assert abandoned is not None
    assert abandoned.status is OperationStatus.FAILED
    assert abandoned.error == "poisoned"
    assert world.script.undone == [(abandoned.id, OperationStatus.FAILED)]
    assert world.script.runs == []
