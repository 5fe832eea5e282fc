"""An operation: ordered steps, each with its status, attempts, progress and output."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.domain.snapshots import Actor


class OperationStatus(StrEnum):
    RUNNING = "Running"
    FINISHED = "Finished"
    FAILED = "Failed"


class StepStatus(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    FINISHED = "Finished"
    FAILED = "Failed"


@dataclass(frozen=True)
class Progress:
    done: int = 0
    total: int | None = None
    bytes_done: int = 0
    bytes_total: int | None = None
    detail: str = ""


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
    snapshot_id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    finished_on: datetime | None = None
    error_step: str | None = None
    error: str = ""
    lease_owner: str | None = None
    lease_until: datetime | None = None
    resumes: int = 0
    etag: str = ""

    @property
    def current_index(self) -> int | None:
        """The first step not yet finished; None when every step is."""
        for index, step in enumerate(self.steps):
            if step.status is not StepStatus.FINISHED:
                return index
        return None

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
