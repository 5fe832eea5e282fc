"""An operation: ordered steps, each with its status, attempts, progress and output; a lease that says
which worker runs it now; and, once it fails or is cancelled, the undo step that puts things back."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.domain.backups import Actor

UNDO = "undo"  # the name of the step an operation's definition adds to undo its effects


class OperationStatus(StrEnum):
    RUNNING = "Running"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


ENDED = frozenset({OperationStatus.FINISHED, OperationStatus.FAILED, OperationStatus.CANCELLED})


class StepStatus(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


@dataclass(frozen=True)
class Progress:
    done: int = 0
    total: int | None = None
    bytes_done: int = 0
    bytes_total: int | None = None
    detail: str = ""
    # A backup's or restore's file documents, counted apart from the step's other work (a restore's
    # switch loads the database while it places the files: done/total and bytes are the dump's there).
    files_done: int = 0
    files_total: int | None = None
    file_bytes_done: int = 0
    file_bytes_total: int | None = None
    # A restore's database load: tables (and other data entries) pg_restore has loaded, of those in the dump.
    tables_done: int = 0
    tables_total: int | None = None


def seconds_left(done: float, total: float | None, elapsed: float) -> float | None:
    """Time left at the rate so far: ``elapsed`` seconds for ``done`` of ``total``. None until there is a
    rate (nothing done yet) or without a total."""
    if not total or done <= 0 or elapsed <= 0:
        return None
    return max(0.0, elapsed * (total - done) / done)


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    started_on: datetime | None = None
    finished_on: datetime | None = None
    progress: Progress = field(default_factory=Progress)
    message: str = ""
    output: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    id: str
    kind: str
    status: OperationStatus
    environment_id: str
    namespace: str
    created_on: datetime
    updated_on: datetime
    created_by: Actor
    steps: tuple[Step, ...]
    backup_id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    finished_on: datetime | None = None
    error_step: str | None = None
    error: str = ""
    # Which worker runs the operation now (a token per claim), until when, and when it last checked in.
    lease_owner: str | None = None
    lease_until: datetime | None = None
    heartbeat_on: datetime | None = None
    # The current step waits until then (a retry's back-off, or a step waiting on other work).
    not_before: datetime | None = None
    # Failed or Cancelled once decided; the status takes that value when the undo step has finished.
    ending: OperationStatus | None = None
    cancel_requested_by: Actor | None = None
    cancel_requested_on: datetime | None = None
    # Set by a step that passed its point of no return (e.g. a restore's COMMIT): why cancel is refused.
    no_return: str = ""
    # False from the moment the operation ends until what follows its end (waking the operation that
    # waits for it) has been done, so that a crash in between is made good on resume.
    announced: bool = True
    # W3C traceparent of the span the operation was launched in: every run of its steps, on any worker and
    # however much later, is a span of that trace (shared/telemetry).
    trace_parent: str = ""
    etag: str = ""

    @property
    def current_index(self) -> int | None:
        """The first of the operation's own steps (not the undo) that has not finished; None when all have."""
        for index, step in enumerate(self.steps):
            if step.name != UNDO and step.status is not StepStatus.FINISHED:
                return index
        return None

    @property
    def undo_index(self) -> int | None:
        return len(self.steps) - 1 if self.steps and self.steps[-1].name == UNDO else None

    @property
    def open(self) -> bool:
        """Work remains: a step, the undo, or what follows the end."""
        return self.status is OperationStatus.RUNNING or not self.announced

    def leased(self, now: datetime) -> bool:
        """A worker holds the operation and has checked in within its lease."""
        return bool(self.lease_owner and self.lease_until and self.lease_until > now)

    def running_index(self) -> int | None:
        for index, step in enumerate(self.steps):
            if step.status is StepStatus.RUNNING:
                return index
        return None

    def stalled_since(self, now: datetime) -> datetime | None:
        """When the worker of a Running step stopped checking in (its lease ran out), if it did."""
        if self.status is not OperationStatus.RUNNING or self.running_index() is None or self.leased(now):
            return None
        return self.lease_until or self.heartbeat_on or self.updated_on

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def output(self, step_name: str, key: str, default: Any = None) -> Any:
        return self.step(step_name).output.get(key, default)

    def with_step(self, index: int, **changes: Any) -> Operation:
        steps = list(self.steps)
        steps[index] = replace(steps[index], **changes)
        return replace(self, steps=tuple(steps))
