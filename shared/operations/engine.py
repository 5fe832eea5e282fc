"""Runs operations step by step, driven by queue messages.

A message names an operation and the step it is for. The worker claims the operation (an
ETag-guarded lease), runs that step, checkpoints it, and queues the next. A transient fault is
retried with back-off; a step that keeps failing — or fails for good — fails the operation and
runs its compensation. A crashed worker's message reappears and the step runs again, so steps
are written to be safe to repeat. A stale message (for a step already done) is dropped, so a
duplicated message never runs a step twice. The reaper resumes operations whose worker vanished
and fails those that keep vanishing."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from shared.adapters.queues import WorkQueue
from shared.clock import Clock
from shared.domain.snapshots import Actor
from shared.errors import AppError
from shared.faults import Fault, describe, is_transient
from shared.leases import Lease, LeaseLost
from shared.operations.catalog import OperationCatalog
from shared.operations.model import Operation, OperationStatus, Step, StepStatus

logger = logging.getLogger("appbackups.operations")


class StepContext:
    """What a running step sees: its operation, its output so far, and a way to report progress."""

    def __init__(self, lease: Lease[Operation], index: int, clock: Clock) -> None:
        self._lease = lease
        self._index = index
        self._clock = clock
        self.output: dict[str, Any] = dict(lease.record.steps[index].output)
        self._progress = lease.record.steps[index].progress
        self._progress_lock = threading.Lock()

    @property
    def operation(self) -> Operation:
        return self._lease.record

    def report(self, **progress: Any) -> None:
        """Update progress (done, total, bytes_done, bytes_total, detail); saved with the next renewal."""
        index = self._index
        with self._progress_lock:
            self._progress = latest = replace(self._progress, **progress)
        self._lease.publish(lambda operation: operation.with_step(index, progress=latest))
        self._lease.check()

    def checkpoint(self, **output: Any) -> None:
        """Save output now, so that a repeat of this step after a crash can pick it up."""
        self.output.update(output)
        index, saved = self._index, dict(self.output)
        self._lease.commit(lambda operation: operation.with_step(index, output=saved))


@dataclass(frozen=True)
class StepDefinition:
    name: str
    title: str
    run: Callable[[StepContext], None]


@dataclass(frozen=True)
class OperationDefinition:
    kind: str
    steps: tuple[StepDefinition, ...]
    on_failed: Callable[[Operation], None]  # compensation; must be safe to repeat


@dataclass(frozen=True)
class EngineSettings:
    max_attempts: int = 4
    retry_base: timedelta = timedelta(seconds=5)
    retry_cap: timedelta = timedelta(minutes=5)
    lease: timedelta = timedelta(minutes=2)
    stale_after: timedelta = timedelta(minutes=15)
    max_resumes: int = 3
    inline_budget: timedelta = timedelta(minutes=10)


def work_message(operation: Operation, index: int) -> dict[str, Any]:
    return {"kind": "operation", "operationId": operation.id, "step": index}


class OperationEngine:
    def __init__(
        self,
        catalog: OperationCatalog,
        queue: WorkQueue,
        clock: Clock,
        settings: EngineSettings | None = None,
    ) -> None:
        self._catalog = catalog
        self._queue = queue
        self._clock = clock
        self.settings = settings or EngineSettings()
        self._definitions: dict[str, OperationDefinition] = {}

    def register(self, definition: OperationDefinition) -> None:
        self._definitions[definition.kind] = definition

    # -- starting ----------------------------------------------------------------------------

    def new(
        self,
        kind: str,
        *,
        environment_id: str,
        namespace: str,
        actor: Actor,
        snapshot_id: str | None = None,
        parameters: dict[str, Any] | None = None,
        warnings: tuple[str, ...] = (),
    ) -> Operation:
        """Record a Running operation with all steps Pending (not yet queued: see ``start``)."""
        definition = self._definitions[kind]
        now = self._clock()
        return self._catalog.add(
            Operation(
                id=str(uuid.uuid4()),
                kind=kind,
                status=OperationStatus.RUNNING,
                environment_id=environment_id,
                namespace=namespace,
                created_on=now,
                updated_on=now,
                created_by=actor,
                steps=tuple(Step(name=step.name, title=step.title) for step in definition.steps),
                snapshot_id=snapshot_id,
                parameters=parameters or {},
                warnings=warnings,
            )
        )

    def start(self, operation: Operation) -> None:
        self._queue.send(work_message(operation, 0))

    def get(self, operation_id: str, kind: str | None = None) -> Operation:
        return self._catalog.get(operation_id, kind)

    def find(self, operation_id: str) -> Operation | None:
        return self._catalog.find(operation_id)

    # -- the worker --------------------------------------------------------------------------

    def advance(self, operation_id: str, step_index: int) -> Operation | None:
        """Run step ``step_index`` of the operation, if that is still the step to run — and then,
        within the inline budget, the steps after it. Each step is still checkpointed and its
        successor's message queued, so a crash loses nothing; the next step merely does not wait
        for the queue to deliver that message (which then finds the step taken and is dropped)."""
        started = time.monotonic()
        result = self._advance_one(operation_id, step_index)
        while (
            result is not None
            and result.status is OperationStatus.RUNNING
            and result.current_index is not None
            and result.current_index == step_index + 1
            and time.monotonic() - started < self.settings.inline_budget.total_seconds()
        ):
            step_index += 1
            result = self._advance_one(operation_id, step_index)
        return result

    def _advance_one(self, operation_id: str, step_index: int) -> Operation | None:
        operation = self._catalog.find(operation_id)
        if operation is None or operation.status is not OperationStatus.RUNNING:
            return None
        definition = self._definitions.get(operation.kind)
        if definition is None:
            logger.error("operation %s has unknown kind %r", operation.id, operation.kind)
            return None
        index = operation.current_index
        if index is None:
            return self._finish(operation)
        if index != step_index:
            logger.info("dropping a stale message for step %d of operation %s (at %d)", step_index, operation.id, index)
            return None
        now = self._clock()
        if operation.lease_owner and operation.lease_until and operation.lease_until > now:
            return None  # a live worker runs this step; its own message stays with it
        step = operation.steps[index]
        claimed = replace(
            operation.with_step(
                index,
                status=StepStatus.RUNNING,
                attempts=step.attempts + 1,
                started_on=step.started_on or now,
                message="",
            ),
            lease_owner=uuid.uuid4().hex,
            lease_until=now + self.settings.lease,
            updated_on=now,
        )
        try:
            claimed = self._catalog.save(claimed)
        except AppError:
            return None  # another worker claimed it first
        lease = Lease(
            claimed,
            save=self._catalog.save,
            extend=lambda record, until: replace(record, lease_until=until, updated_on=self._clock()),
            duration=self.settings.lease,
            clock=self._clock,
            label=f"operation {operation.id} step {step.name}",
        )
        with lease:
            context = StepContext(lease, index, self._clock)
            try:
                definition.steps[index].run(context)
            except LeaseLost:
                logger.warning("operation %s was taken over while running %s", operation.id, step.name)
                return None
            except Exception as error:
                return self._step_failed(lease, definition, index, error)
            try:
                done = lease.commit(lambda record: self._step_finished(record, index, context.output), release=True)
            except LeaseLost:
                return None
        if done.current_index is None:
            return self._finish(done)
        self._queue.send(work_message(done, index + 1))
        return done

    def _step_finished(self, operation: Operation, index: int, output: dict[str, Any]) -> Operation:
        now = self._clock()
        progress = operation.steps[index].progress
        if progress.total is not None and progress.done < progress.total:
            progress = replace(progress, done=progress.total)
        return replace(
            operation.with_step(index, status=StepStatus.FINISHED, finished_on=now, output=output, progress=progress),
            lease_owner=None,
            lease_until=None,
            updated_on=now,
            resumes=0,
        )

    def _finish(self, operation: Operation) -> Operation:
        now = self._clock()
        try:
            return self._catalog.save(
                replace(operation, status=OperationStatus.FINISHED, finished_on=now, updated_on=now)
            )
        except AppError:
            return operation

    def _step_failed(
        self, lease: Lease[Operation], definition: OperationDefinition, index: int, error: Exception
    ) -> Operation | None:
        operation = lease.record
        step = operation.steps[index]
        message = describe(error)
        if is_transient(error) and step.attempts < self.settings.max_attempts:
            delay = min(self.settings.retry_base * (2 ** (step.attempts - 1)), self.settings.retry_cap)
            logger.warning(
                "operation %s step %s attempt %d failed, retrying in %ds: %s",
                operation.id,
                step.name,
                step.attempts,
                delay.total_seconds(),
                message,
            )
            try:
                waiting = lease.commit(
                    lambda record: replace(
                        record.with_step(
                            index,
                            status=StepStatus.PENDING,
                            message=f"Attempt {step.attempts} of {self.settings.max_attempts} failed: {message}",
                        ),
                        lease_owner=None,
                        lease_until=None,
                        updated_on=self._clock(),
                    ),
                    release=True,
                )
            except LeaseLost:
                return None
            self._queue.send(work_message(waiting, index), delay_seconds=int(delay.total_seconds()))
            return waiting
        if not isinstance(error, AppError | Fault):
            logger.error("operation %s step %s failed", operation.id, step.name, exc_info=error)
        try:
            failed = lease.commit(
                lambda record: self._failed(
                    record.with_step(index, status=StepStatus.FAILED, message=message), step, message
                ),
                release=True,
            )
        except LeaseLost:
            return None
        self._compensate(definition, failed)
        return failed

    def _failed(self, operation: Operation, step: Step, message: str) -> Operation:
        now = self._clock()
        return replace(
            operation,
            status=OperationStatus.FAILED,
            finished_on=now,
            updated_on=now,
            error_step=step.name,
            error=message,
            lease_owner=None,
            lease_until=None,
        )

    def _compensate(self, definition: OperationDefinition, failed: Operation) -> None:
        try:
            definition.on_failed(failed)
        except Exception:
            logger.exception("compensation of operation %s failed; the reaper will not retry it", failed.id)

    # -- keeping nothing Running forever ----------------------------------------------------

    def fail(self, operation_id: str, reason: str) -> Operation | None:
        """Fail an operation nobody works on (poisoned message, vanished worker) and compensate."""
        operation = self._catalog.find(operation_id)
        if operation is None or operation.status is not OperationStatus.RUNNING:
            return None
        if operation.lease_until and operation.lease_until > self._clock():
            return None  # a live worker holds it
        index = operation.current_index
        step = operation.steps[index] if index is not None else operation.steps[-1]
        marked = (
            operation.with_step(index, status=StepStatus.FAILED, message=reason) if index is not None else operation
        )
        try:
            failed = self._catalog.save(self._failed(marked, step, reason))
        except AppError:
            return None
        self._compensate(self._definitions[failed.kind], failed)
        return failed

    def reap(self) -> list[Operation]:
        """Resume Running operations that nobody has touched for a while; fail the ones that keep stalling."""
        now = self._clock()
        touched = []
        for operation in self._catalog.running():
            if operation.lease_until and operation.lease_until > now:
                continue
            if now - operation.updated_on < self.settings.stale_after:
                continue
            index = operation.current_index
            if index is None:
                touched.append(self._finish(operation))
                continue
            if operation.resumes >= self.settings.max_resumes:
                failed = self.fail(
                    operation.id,
                    f"The operation stalled at step '{operation.steps[index].title}' and was resumed "
                    f"{operation.resumes} times without progress.",
                )
                if failed is not None:
                    touched.append(failed)
                continue
            try:
                resumed = self._catalog.save(replace(operation, resumes=operation.resumes + 1, updated_on=now))
            except AppError:
                continue
            logger.warning("resuming operation %s at step %s", operation.id, operation.steps[index].name)
            self._queue.send(work_message(resumed, index))
            touched.append(resumed)
        return touched
