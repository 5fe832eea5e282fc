"""The operation engine on in-memory storage: checkpoints, retries, stale messages, compensation, reaping."""

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.adapters.queues import MemoryWorkQueue
from shared.adapters.tables import MemoryRowTable
from shared.domain.snapshots import Actor
from shared.errors import Conflict
from shared.faults import Fault
from shared.operations.catalog import OperationCatalog
from shared.operations.engine import EngineSettings, OperationDefinition, OperationEngine, StepDefinition
from shared.operations.model import OperationStatus, StepStatus
from tests.support.memory import SteppingClock

ADA = Actor("ada", "Ada")


class Script:
    """Steps whose behaviour the test sets; records every run."""

    def __init__(self):
        self.runs: list[str] = []
        self.failures: dict[str, list[Exception]] = {}
        self.compensated: list[str] = []

    def step(self, name):
        def run(context):
            self.runs.append(name)
            context.report(done=1, total=2, detail=name)
            context.checkpoint(**{f"{name}_seen": len(self.runs)})
            pending = self.failures.get(name)
            if pending:
                raise pending.pop(0)
            context.output["result"] = name.upper()

        return StepDefinition(name, name.title(), run)


@pytest.fixture
def setup():
    clock = SteppingClock()
    queue = MemoryWorkQueue()
    catalog = OperationCatalog(MemoryRowTable())
    settings = EngineSettings(max_attempts=3, stale_after=timedelta(minutes=15), inline_budget=timedelta(0))
    engine = OperationEngine(catalog, queue, clock, settings)
    script = Script()
    engine.register(
        OperationDefinition(
            "toy",
            (script.step("first"), script.step("second"), script.step("third")),
            on_failed=lambda operation: script.compensated.append(operation.id),
        )
    )
    operation = engine.new("toy", environment_id="env", namespace="ns", actor=ADA, parameters={"x": 1})
    engine.start(operation)
    return engine, queue, script, operation, clock, catalog


def drain(engine, queue, limit=50):
    for _ in range(limit):
        if not queue.messages:
            return
        message = queue.messages.pop(0)
        engine.advance(message["operationId"], message["step"])
    raise AssertionError("the operation did not settle")


def test_steps_run_in_order_and_checkpoint(setup):
    engine, queue, script, operation, _, _ = setup
    assert queue.messages == [{"kind": "operation", "operationId": operation.id, "step": 0}]
    drain(engine, queue)
    done = engine.get(operation.id)
    assert done.status is OperationStatus.FINISHED
    assert script.runs == ["first", "second", "third"]
    assert [step.status for step in done.steps] == [StepStatus.FINISHED] * 3
    assert done.output("second", "result") == "SECOND"
    assert done.output("second", "second_seen") == 2
    assert all(step.started_on and step.finished_on for step in done.steps)
    assert done.steps[0].progress.done == done.steps[0].progress.total == 2
    assert done.finished_on is not None
    assert done.lease_owner is None


def test_a_transient_fault_is_retried_with_back_off(setup):
    engine, queue, script, operation, _, _ = setup
    script.failures["second"] = [Fault("flaky", transient=True)]
    engine.advance(operation.id, 0)
    waiting = engine.advance(operation.id, 1)
    assert waiting.steps[1].status is StepStatus.PENDING
    assert "Attempt 1 of 3 failed: flaky" in waiting.steps[1].message
    assert queue.messages[-1] == {"kind": "operation", "operationId": operation.id, "step": 1}
    drain(engine, queue)
    done = engine.get(operation.id)
    assert done.status is OperationStatus.FINISHED
    assert done.steps[1].attempts == 2
    assert script.runs == ["first", "second", "second", "third"]
    assert done.output("second", "second_seen") == 3  # the repeat saw the checkpoint of the first try


def test_a_step_that_keeps_failing_fails_the_operation_and_compensates(setup):
    engine, queue, script, operation, _, _ = setup
    script.failures["second"] = [Fault("flaky", transient=True) for _ in range(5)]
    drain(engine, queue)
    failed = engine.get(operation.id)
    assert failed.status is OperationStatus.FAILED
    assert (failed.error_step, failed.error) == ("second", "flaky")
    assert failed.steps[1].status is StepStatus.FAILED
    assert failed.steps[2].status is StepStatus.PENDING
    assert script.runs.count("second") == 3
    assert script.compensated == [operation.id]


def test_a_permanent_fault_fails_at_once(setup):
    engine, queue, script, operation, _, _ = setup
    script.failures["first"] = [Conflict("the target changed")]
    drain(engine, queue)
    failed = engine.get(operation.id)
    assert (failed.status, failed.error) == (OperationStatus.FAILED, "the target changed")
    assert script.runs == ["first"]
    assert script.compensated == [operation.id]


def test_a_duplicated_message_does_not_run_a_step_twice(setup):
    engine, queue, script, operation, _, _ = setup
    engine.advance(operation.id, 0)
    engine.advance(operation.id, 0)  # the same message again, after the step finished
    assert script.runs == ["first"]
    drain(engine, queue)
    assert script.runs == ["first", "second", "third"]


def test_a_live_lease_keeps_other_workers_out(setup):
    engine, _queue, script, operation, clock, catalog = setup
    held = catalog.save(replace(operation, lease_owner="other", lease_until=clock.now + timedelta(minutes=1)))
    assert engine.advance(operation.id, 0) is None
    assert script.runs == []
    catalog.save(replace(held, lease_until=clock.now - timedelta(seconds=1)))
    engine.advance(operation.id, 0)
    assert script.runs == ["first"]


def test_a_crashed_worker_is_resumed_by_the_reaper_and_finishes(setup):
    engine, queue, script, operation, clock, _catalog = setup
    engine.advance(operation.id, 0)
    queue.messages.clear()  # the worker crashed before its next message was sent
    assert engine.reap() == []
    clock.now += timedelta(minutes=20)
    resumed = engine.reap()
    assert [item.id for item in resumed] == [operation.id]
    assert queue.messages == [{"kind": "operation", "operationId": operation.id, "step": 1}]
    drain(engine, queue)
    assert engine.get(operation.id).status is OperationStatus.FINISHED
    assert script.runs == ["first", "second", "third"]


def test_an_operation_that_keeps_stalling_is_failed_by_the_reaper(setup):
    engine, queue, script, operation, clock, _ = setup
    queue.messages.clear()
    for _ in range(3):
        clock.now += timedelta(minutes=20)
        engine.reap()
        queue.messages.clear()
    clock.now += timedelta(minutes=20)
    engine.reap()
    failed = engine.get(operation.id)
    assert failed.status is OperationStatus.FAILED
    assert "stalled" in failed.error
    assert script.compensated == [operation.id]


def test_fail_leaves_a_leased_operation_alone(setup):
    engine, _, script, operation, clock, catalog = setup
    catalog.save(replace(operation, lease_owner="w", lease_until=clock.now + timedelta(minutes=5)))
    assert engine.fail(operation.id, "poisoned") is None
    assert engine.get(operation.id).status is OperationStatus.RUNNING
    assert script.compensated == []


def test_within_the_inline_budget_a_worker_runs_the_following_steps_itself(setup):
    engine, queue, script, operation, _, _ = setup
    engine.settings = EngineSettings(max_attempts=3, inline_budget=timedelta(minutes=1))
    message = queue.messages.pop(0)
    done = engine.advance(message["operationId"], message["step"])
    assert done.status is OperationStatus.FINISHED
    assert script.runs == ["first", "second", "third"]
    # Every step still queued its successor; those messages now find their step done.
    assert [m["step"] for m in queue.messages] == [1, 2]
    drain(engine, queue)
    assert script.runs == ["first", "second", "third"]
    assert all(step.attempts == 1 for step in engine.get(operation.id).steps)
