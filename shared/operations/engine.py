"""The one engine every long job runs on: an operation is a row of steps and a lease, driven by queue messages
that only wake it up. The protocol (claim, watchdog, retry, undo, reaper): README, "Long work"."""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NoReturn

from shared.adapters.allocator import release_free_memory
from shared.adapters.errors import StorageFault
from shared.adapters.queues import WorkQueue
from shared.catalog.operations import OperationCatalog
from shared.clock import Clock
from shared.domain.backups import Actor
from shared.domain.operations import ENDED, UNDO, Operation, OperationStatus, Step, StepStatus
from shared.errors import AppError, Conflict, ServiceUnavailable, StaleRecord
from shared.faults import Fault, crash_point, describe, is_transient
from shared.operations.lease import DEFAULT_PROGRESS_INTERVAL, CancelRequested, LeaseLost, OperationLease
from shared.telemetry.telemetry import Telemetry, default_telemetry, error_code

logger = logging.getLogger("appbackups.operations")


class WaitLater(Exception):
    """Raised by a step that cannot go on yet (e.g. it waits for another operation): run it again later,
    without counting an attempt."""

    def __init__(self, seconds: float, detail: str = "") -> None:
        super().__init__(detail or f"waiting {seconds:.0f}s")
        self.seconds = seconds
        self.detail = detail


class StepContext:
    """What a running step sees: its operation, its output so far, and ways to report progress, save
    a checkpoint, notice a cancel, and pass a point of no return.

    ``stopping`` is set (from the lease's thread, within its progress interval) once the step must stop:
    a cancel it can act on was requested, or the lease was lost. Hand it to work that blocks (a
    database load) so that it stops without waiting for the step's next ``report`` or ``check``."""

    def __init__(self, lease: OperationLease, index: int) -> None:
        self._lease = lease
        self._index = index
        self.stopping: threading.Event = lease.step_stopping()
        self.output: dict[str, Any] = dict(lease.record.steps[index].output)
        self._progress = lease.record.steps[index].progress

    @property
    def operation(self) -> Operation:
        return self._lease.record

    @property
    def attempt(self) -> int:
        return self._lease.record.steps[self._index].attempts

    def report(self, **progress: Any) -> None:
        """Update progress (any field of Progress); saved within the lease's progress interval.
        Raises when the operation was cancelled or taken over, so a long step stops promptly."""
        index = self._index
        self._progress = latest = replace(self._progress, **progress)
        self._lease.publish(lambda operation: operation.with_step(index, progress=latest))
        self._lease.check()

    def check(self) -> None:
        self._lease.check()

    def remember(self, key: str, make: Callable[[], Any]) -> Any:
        """A value made once for this step and checkpointed, so a repeat after a crash gets the same
        one (an activity entry's id, say, so the entry is written once)."""
        if key not in self.output:
            self.checkpoint(**{key: make()})
        return self.output[key]

    def checkpoint(self, **output: Any) -> None:
        """Save output now, so that a repeat of this step after a crash can pick it up."""
        self.output.update(output)
        index, saved = self._index, dict(self.output)
        self._lease.commit(lambda operation: operation.with_step(index, output=saved))

    def point_of_no_return(self, reason: str, **output: Any) -> None:
        """From here on the operation can no longer be cancelled (``reason`` says why, to whoever
        tries). Saved together with ``output``, atomically with respect to a cancel request: if a
        cancel came first, this raises instead and the step must not go on."""
        self.output.update(output)
        index, saved = self._index, dict(self.output)

        def passing(operation: Operation) -> Operation:
            if operation.cancel_requested_by is not None and not operation.no_return:
                raise CancelRequested(operation.id)
            return replace(operation.with_step(index, output=saved), no_return=reason)

        self._lease.commit(passing)

    def take_back_point_of_no_return(self) -> None:
        """The step found, on a repeat, that what it was about to do never happened: cancel is possible again."""
        self._lease.commit(lambda operation: replace(operation, no_return=""))


StepRun = Callable[[StepContext], None]


@dataclass(frozen=True)
class StepDefinition:
    name: str
    title: str
    run: StepRun


@dataclass(frozen=True)
class OperationDefinition:
    kind: str
    steps: tuple[StepDefinition, ...]
    undo: StepDefinition  # puts back what the steps did; runs after a failure or a cancel; safe to repeat
    max_attempts: int | None = None  # per step; the engine's setting when None
    on_ended: Callable[[Operation], None] | None = None  # after the final status is saved; safe to repeat
    # Called by the reaper for an operation nobody holds the lease of (its worker died): release what that
    # worker recorded and may have left running outside this process (a temporary instance). Safe to repeat.
    on_reaped: Callable[[Operation], None] | None = None


@dataclass(frozen=True)
class EngineSettings:
    """From the app settings (shared/config.py states their defaults), and the engine's own constants."""

    max_attempts: int
    retry_base: timedelta
    lease: timedelta
    watchdog_slack: timedelta
    stale_after: timedelta
    retry_cap: timedelta = timedelta(minutes=5)
    inline_budget: timedelta = timedelta(minutes=10)
    progress_interval: timedelta = DEFAULT_PROGRESS_INTERVAL  # progress saved, cancel noticed, at least this often
    reap_interval: timedelta = timedelta(minutes=2)  # how often the reaper runs (functions/maintenance.py's timer)

    @property
    def stall_bound(self) -> timedelta:
        """How long an operation may stay Stalled: its watchdog message wakes it just after the lease runs out,
        and if that message was lost the reaper does within ``stale_after`` of its last check-in, at its next run."""
        return self.stale_after + self.reap_interval + self.watchdog_slack


def work_message(operation: Operation, watch: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"kind": "operation", "operationId": operation.id}
    index = operation.current_index
    if index is not None:
        message["step"] = index
    if watch:
        message["watch"] = watch
    return message


class _Stop(Exception):
    """The worker lets go of the operation: a retry is scheduled, it waits, or the lease is gone."""


class OperationEngine:
    def __init__(
        self,
        catalog: OperationCatalog,
        queue: WorkQueue,
        clock: Clock,
        settings: EngineSettings,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._catalog = catalog
        self._queue = queue
        self._clock = clock
        self.settings = settings
        self._telemetry = telemetry or default_telemetry()
        self._definitions: dict[str, OperationDefinition] = {}

    def register(self, definition: OperationDefinition) -> None:
        self._definitions[definition.kind] = definition

    # -- starting and reading ------------------------------------------------------------------

    def new(
        self,
        kind: str,
        *,
        environment_id: str,
        namespace: str,
        actor: Actor,
        backup_id: str | None = None,
        parameters: dict[str, Any] | None = None,
        warnings: tuple[str, ...] = (),
        operation_id: str | None = None,
    ) -> Operation:
        """Record a Running operation with all steps Pending (not yet queued: see ``start``)."""
        definition = self._definitions[kind]
        now = self._clock()
        operation_id = operation_id or str(uuid.uuid4())
        with self._telemetry.launch(kind, operation_id, environment_id, namespace) as trace_parent:
            return self._catalog.add(
                Operation(
                    id=operation_id,
                    kind=kind,
                    status=OperationStatus.RUNNING,
                    environment_id=environment_id,
                    namespace=namespace,
                    created_on=now,
                    updated_on=now,
                    created_by=actor,
                    steps=tuple(Step(name=step.name, title=step.title) for step in definition.steps),
                    backup_id=backup_id,
                    parameters=parameters or {},
                    warnings=warnings,
                    trace_parent=trace_parent,
                )
            )

    def start(self, operation: Operation) -> None:
        self._queue.send(work_message(operation))

    def wake(self, operation_id: str) -> None:
        """Queue a message for the operation: it resumes, or the message is dropped if nothing is to do."""
        self._queue.send({"kind": "operation", "operationId": operation_id})

    def launch(
        self,
        operation: Operation | str,
        noun: str,
        *,
        keep: bool = False,
        detail: str = "",
        code: str = ServiceUnavailable.code,
    ) -> None:
        """Queue a recorded operation (or the one with this id). When the queue is down, abandon it (with
        ``keep``, leave it for a second launch or the reaper) and raise ServiceUnavailable, a 503."""
        operation_id = operation if isinstance(operation, str) else operation.id
        try:
            if isinstance(operation, str):
                self.wake(operation_id)
            else:
                self.start(operation)
        except StorageFault as error:
            if not keep:
                self.abandon(operation_id, f"The {noun} could not be queued.")
            detail = detail or f"The work queue is unavailable; the {noun} was not started."
            raise ServiceUnavailable(detail, code=code) from error

    def get(self, operation_id: str, kind: str | None = None) -> Operation:
        return self._catalog.get(operation_id, kind)

    def find(self, operation_id: str) -> Operation | None:
        return self._catalog.find(operation_id)

    # -- the worker ------------------------------------------------------------------------------

    def handle(self, operation_id: str, *, watch: str | None = None) -> Operation | None:
        """Act on one queue message for the operation. Returns the operation as this worker left
        it, or None when the message had nothing to do."""
        operation = self._catalog.find(operation_id)
        if operation is None:
            logger.warning("a message for operation %s, which does not exist, was dropped", operation_id)
            return None
        if not operation.open:
            return None
        definition = self._definitions.get(operation.kind)
        if definition is None:
            raise Fault(f"Operation {operation.id} has a kind this app does not know: {operation.kind!r}.")
        now = self._clock()
        # What to do is read from the row, so a duplicated or out-of-order message has no second effect.
        if operation.leased(now):  # a live worker has it: this message is dropped, the owner's watchdog covers it
            if watch is not None and watch == operation.lease_owner:
                self._send_watchdog(operation)  # its worker still checks in: look again when the lease would end
            return None
        if operation.not_before is not None and operation.not_before > now:  # a retry's back-off: wait for it
            self._send(operation, delay=operation.not_before - now, watch=watch)
            return None
        return self._work(definition, operation)

    def _work(self, definition: OperationDefinition, operation: Operation) -> Operation | None:
        token = uuid.uuid4().hex  # a new token per claim; the claim is ETag-guarded
        now = self._clock()
        try:
            claimed = self._catalog.save(
                replace(operation, lease_owner=token, lease_until=now + self.settings.lease, heartbeat_on=now)
            )
        except StaleRecord:
            return None  # another worker claimed it first
        self._send_watchdog(claimed)  # resumes from the last checkpoint if this worker dies
        started = time.monotonic()
        with (
            OperationLease(
                claimed, self._catalog, self.settings.lease, self._clock, self.settings.progress_interval
            ) as lease,
            self._telemetry.operation_run(lambda: lease.record),
        ):
            try:
                self._next_task(definition, lease)
                while lease.record.open:  # on to the next step, keeping the lease: no queue hop between steps
                    if time.monotonic() - started >= self.settings.inline_budget.total_seconds():
                        handed_over = lease.commit(lambda record: record, release=True)
                        self._send(handed_over)  # the next worker goes on; this one has had its share
                        return handed_over
                    self._next_task(definition, lease)
                lease.commit(lambda record: record, release=True)
            except _Stop:
                pass
            except LeaseLost:
                logger.warning("operation %s was taken over by another worker; this one stops", operation.id)
            finally:
                release_free_memory()  # the job's pools are gone: give their arenas' free pages back
        return lease.record

    def _next_task(self, definition: OperationDefinition, lease: OperationLease) -> None:
        operation = lease.record
        if operation.status in ENDED:
            self._announce(definition, lease)
        elif operation.ending is not None:
            self._undo(definition, lease)
        elif operation.cancel_requested_by is not None and not operation.no_return:
            lease.commit(lambda record: self._begin_ending(record, OperationStatus.CANCELLED, ""))
        elif operation.current_index is None:
            self._telemetry.operation_ended(lease.commit(self._finished))
        else:
            self._step(definition, lease, operation.current_index)

    # -- running a step --------------------------------------------------------------------------

    def _max_attempts(self, definition: OperationDefinition) -> int:
        return definition.max_attempts or self.settings.max_attempts

    def _step(self, definition: OperationDefinition, lease: OperationLease, index: int) -> None:
        step = lease.record.steps[index]
        limit = self._max_attempts(definition)
        if step.status is StepStatus.RUNNING and step.attempts >= limit:
            message = (
                f"The worker running '{step.title}' stopped responding {step.attempts} times; the step was given up."
            )
            logger.error("operation %s: %s", lease.record.id, message)
            lease.commit(lambda record: self._begin_ending(record, OperationStatus.FAILED, message, index))
            self._telemetry.operation_failed(lease.record, "worker_unresponsive")
            return
        begun = lease.commit(lambda record: self._begin_step(record, index))
        with self._telemetry.step(lambda: lease.record, index) as span:
            context = StepContext(lease, index)
            try:
                definition.steps[index].run(context)
                lease.check()
            except LeaseLost:
                raise
            except Exception as error:
                if lease.lost:
                    raise LeaseLost(begun.id) from error
                if lease.cancel_requested or isinstance(error, CancelRequested):
                    # Whatever the step raised on its way out (a pipe closed under it, say), it was cancelled.
                    lease.commit(
                        lambda record: self._begin_ending(
                            record.with_step(index, output=context.output), OperationStatus.CANCELLED, "", index
                        )
                    )
                    return
                if not isinstance(error, WaitLater):
                    self._telemetry.attempt_failed(span, error)
                self._step_failed(definition, lease, index, error, context)
                return
            output = context.output
            lease.commit(lambda record: self._step_finished(record, index, output))

    def _step_failed(
        self,
        definition: OperationDefinition,
        lease: OperationLease,
        index: int,
        error: Exception,
        context: StepContext,
    ) -> None:
        operation = lease.record
        step = operation.steps[index]
        if isinstance(error, WaitLater):  # any message may look again sooner (the awaited work's end does)
            self._retry_later(
                lease,
                index,
                timedelta(seconds=error.seconds),
                error.detail,
                output=context.output,
                count_attempt=False,
                hold=False,
            )
        message = describe(error)
        limit = self._max_attempts(definition)
        if is_transient(error) and step.attempts < limit:
            delay = self._backoff(step.attempts)
            logger.warning(
                "operation %s step %s attempt %d failed, retrying in %ds: %s",
                operation.id,
                step.name,
                step.attempts,
                delay.total_seconds(),
                message,
            )
            self._retry_later(
                lease, index, delay, f"Attempt {step.attempts} of {limit} failed: {message}", output=context.output
            )
        if not isinstance(error, AppError | Fault):
            logger.error("operation %s step %s failed", operation.id, step.name, exc_info=error)
        else:
            logger.warning("operation %s step %s failed: %s", operation.id, step.name, message)
        lease.commit(
            lambda record: self._begin_ending(
                record.with_step(index, output=context.output), OperationStatus.FAILED, message, index
            )
        )
        self._telemetry.operation_failed(lease.record, error_code(error))

    def _retry_later(
        self,
        lease: OperationLease,
        index: int,
        delay: timedelta,
        message: str,
        *,
        output: dict[str, Any] | None = None,
        count_attempt: bool = True,
        hold: bool = True,
    ) -> NoReturn:
        """Let go of the operation; a message brings it back to step ``index`` after ``delay``. With
        ``hold`` (a retry's back-off) earlier messages wait until then too."""
        not_before = self._clock() + delay if hold else None

        def waiting(record: Operation) -> Operation:
            step = record.steps[index]
            changed = record.with_step(
                index,
                status=StepStatus.PENDING,
                message=message,
                attempts=step.attempts if count_attempt else max(step.attempts - 1, 0),
                **({"output": output} if output is not None else {}),
            )
            return replace(changed, not_before=not_before)

        left = lease.commit(waiting, release=True)
        self._send(left, delay=delay)
        raise _Stop

    def _backoff(self, attempts: int) -> timedelta:
        return min(self.settings.retry_base * (2 ** max(attempts - 1, 0)), self.settings.retry_cap)

    def _begin_step(self, operation: Operation, index: int) -> Operation:
        step = operation.steps[index]
        now = self._clock()
        return replace(
            operation.with_step(
                index,
                status=StepStatus.RUNNING,
                attempts=step.attempts + 1,
                started_on=step.started_on or now,
                message="",
            ),
            not_before=None,
        )

    def _step_finished(self, operation: Operation, index: int, output: dict[str, Any]) -> Operation:
        now = self._clock()
        progress = operation.steps[index].progress
        if progress.total is not None and progress.done < progress.total:
            progress = replace(progress, done=progress.total)
        return operation.with_step(
            index, status=StepStatus.FINISHED, finished_on=now, output=output, progress=progress, message=""
        )

    def _finished(self, operation: Operation) -> Operation:
        now = self._clock()
        return replace(operation, status=OperationStatus.FINISHED, finished_on=now, announced=False)

    # -- failing, cancelling, undoing -------------------------------------------------------------

    def _begin_ending(
        self, operation: Operation, ending: OperationStatus, message: str, index: int | None = None
    ) -> Operation:
        """Decide the operation fails (or is cancelled) and add its undo step."""
        if operation.ending is not None:
            return operation
        definition = self._definitions[operation.kind]
        step_status = StepStatus.CANCELLED if ending is OperationStatus.CANCELLED else StepStatus.FAILED
        if index is None:
            index = operation.running_index() if operation.running_index() is not None else operation.current_index
        changed = operation
        if index is not None:
            changed = changed.with_step(index, status=step_status, message=message, finished_on=self._clock())
        undo = Step(name=UNDO, title=definition.undo.title)
        return replace(
            changed,
            ending=ending,
            not_before=None,
            steps=(*changed.steps, undo),
            error_step=changed.steps[index].name if index is not None and message else changed.error_step,
            error=message or changed.error,
        )

    def _undo(self, definition: OperationDefinition, lease: OperationLease) -> None:
        index = lease.record.undo_index
        assert index is not None
        lease.commit(lambda record: self._begin_step(record, index))
        with self._telemetry.step(lambda: lease.record, index) as span:
            context = StepContext(lease, index)
            try:
                definition.undo.run(context)
            except LeaseLost:
                raise
            except Exception as error:  # an undo is never given up: retried with back-off until it is done
                self._telemetry.attempt_failed(span, error)
                attempts = lease.record.steps[index].attempts
                delay = self._backoff(attempts)
                logger.warning(
                    "operation %s: undo attempt %d failed, retrying in %ds: %s",
                    lease.record.id,
                    attempts,
                    delay.total_seconds(),
                    describe(error),
                    exc_info=not isinstance(error, AppError | Fault) and not is_transient(error),
                )
                self._retry_later(
                    lease, index, delay, f"Attempt {attempts} failed: {describe(error)}", output=context.output
                )
            output = context.output
            crash_point("operations.undo.finished")

            def ended(record: Operation) -> Operation:
                done = self._step_finished(record, index, output)
                return replace(
                    done, status=record.ending or OperationStatus.FAILED, finished_on=self._clock(), announced=False
                )

            self._telemetry.operation_ended(lease.commit(ended))

    def _announce(self, definition: OperationDefinition, lease: OperationLease) -> None:
        operation = lease.record
        try:
            if definition.on_ended is not None:
                definition.on_ended(operation)
            parent = operation.parameters.get("parentOperationId")
            if parent:
                self._queue.send({"kind": "operation", "operationId": parent})
        except Exception as error:
            delay = self._backoff(2)
            logger.warning(
                "operation %s: what follows its end failed, again in %ds: %s",
                operation.id,
                delay.total_seconds(),
                describe(error),
            )
            left = lease.commit(lambda record: replace(record, not_before=self._clock() + delay), release=True)
            self._send(left, delay=delay)
            raise _Stop from error
        lease.commit(lambda record: replace(record, announced=True, not_before=None))

    # -- messages ---------------------------------------------------------------------------------

    def _send(self, operation: Operation, *, delay: timedelta = timedelta(0), watch: str | None = None) -> None:
        self._queue.send(work_message(operation, watch), delay_seconds=math.ceil(max(delay.total_seconds(), 0)))

    def _send_watchdog(self, operation: Operation) -> None:
        assert operation.lease_until is not None
        delay = operation.lease_until - self._clock() + self.settings.watchdog_slack
        try:
            self._send(operation, delay=delay, watch=operation.lease_owner)
        except Exception as error:  # the work goes on; if its worker dies too, the reaper wakes it
            logger.warning("operation %s: its watchdog could not be queued: %s", operation.id, describe(error))

    # -- cancel, abandon, reap ---------------------------------------------------------------------

    def cancel(self, operation_id: str, actor: Actor, kind: str | None = None) -> Operation:
        """Ask for the operation to stop and undo what it did. Idempotent. Refused (409) once it has
        ended otherwise or passed its point of no return."""
        for _ in range(10):
            operation = self._catalog.get(operation_id, kind)
            if operation.status is OperationStatus.CANCELLED or operation.ending is OperationStatus.CANCELLED:
                return operation
            if operation.cancel_requested_by is not None and not operation.no_return:
                return operation
            noun = operation.kind
            if operation.status in ENDED:
                raise Conflict(
                    f"The {noun} {operation.id} has {operation.status.value.lower()} already: nothing to cancel.",
                    code="operation_ended",
                    operationStatus=operation.status.value,
                )
            if operation.ending is OperationStatus.FAILED:
                raise Conflict(
                    f"The {noun} {operation.id} failed and is undoing its changes already.", code="operation_failing"
                )
            if operation.no_return:
                raise Conflict(operation.no_return, code="past_point_of_no_return")
            now = self._clock()
            requested = replace(operation, cancel_requested_by=actor, cancel_requested_on=now, updated_on=now)
            if not operation.leased(now):
                requested = self._begin_ending(requested, OperationStatus.CANCELLED, "")
            try:
                saved = self._catalog.save(requested)
            except StaleRecord:
                continue
            if not operation.leased(now):
                self._send(saved)
            logger.info("operation %s (%s): cancel requested by %s", saved.id, saved.kind, actor.name or actor.id)
            return saved
        raise Conflict(f"The {operation_id} kept changing while it was being cancelled; try again.")

    def abandon(self, operation_id: str, reason: str) -> Operation | None:
        """Fail an operation nobody works on (its message was poisoned, or it could not be queued):
        its undo runs now if it can, else on the next message or reap."""
        operation = self._catalog.find(operation_id)
        if operation is None or operation.status is not OperationStatus.RUNNING or operation.ending is not None:
            return None
        if operation.leased(self._clock()):
            return None  # a live worker holds it and will finish or fail it
        try:
            failing = self._catalog.save(self._begin_ending(operation, OperationStatus.FAILED, reason))
        except StaleRecord:
            return None
        self._telemetry.operation_failed(failing, "abandoned")
        try:
            return self.handle(failing.id) or failing
        except Exception:
            logger.warning("operation %s: its undo could not run now; the reaper resumes it", failing.id, exc_info=True)
            return failing

    def reap(self) -> list[Operation]:
        """Wake open operations nobody has touched for ``stale_after`` — a lost message, a worker that
        vanished before its watchdog was sent — so that nothing stays Running."""
        now = self._clock()
        woken = []
        for operation in self._catalog.open_operations():
            if operation.leased(now):
                continue
            if operation.not_before is not None and operation.not_before > now:
                continue
            if now - operation.updated_on < self.settings.stale_after:
                continue
            logger.warning("waking %s %s, untouched since %s", operation.kind, operation.id, operation.updated_on)
            self._release_leftovers(operation)
            self._send(operation)
            woken.append(operation)
        return woken

    def _release_leftovers(self, operation: Operation) -> None:
        definition = self._definitions.get(operation.kind)
        if definition is None or definition.on_reaped is None:
            return
        try:
            definition.on_reaped(operation)
        except Exception as error:  # the operation is woken all the same; its repeat or undo releases them too
            logger.warning(
                "operation %s: what its worker left could not be released: %s", operation.id, describe(error)
            )

    def waiting_for(self, operation_id: str) -> Operation | None:
        """The operation, for a step that waits on it (None if it does not exist)."""
        return self._catalog.find(operation_id)

    def stalled_since(self, operation: Operation) -> datetime | None:
        return operation.stalled_since(self._clock())
