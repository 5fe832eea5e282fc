"""Response bodies of long-running operations (restores; downloads and uploads use the same shape)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from shared.contracts.backups import PrincipalView
from shared.contracts.common import ApiModel, EnvironmentId
from shared.operations.model import Operation, OperationStatus, StepStatus


class ProgressView(ApiModel):
    done: int
    total: int | None
    bytes_done: int
    bytes_total: int | None
    percent: float | None = Field(description="Of the step, from done/total or bytes, when a total is known.")
    detail: str


class StepView(ApiModel):
    name: str
    title: str
    status: StepStatus
    attempts: int
    started_on: datetime | None
    finished_on: datetime | None
    progress: ProgressView
    message: str


class ErrorView(ApiModel):
    step: str | None
    message: str


class OperationView(ApiModel):
    id: str
    kind: str
    status: OperationStatus
    environment_id: str
    namespace: str
    snapshot_id: str | None
    created_on: datetime
    finished_on: datetime | None
    created_by: PrincipalView
    steps: list[StepView]
    warnings: list[str]
    error: ErrorView | None
    details: dict[str, Any] = Field(description="What the operation produced, e.g. the pre-restore backup's id.")

    @classmethod
    def of(cls, operation: Operation) -> OperationView:
        steps = []
        for step in operation.steps:
            progress = step.progress
            percent = None
            if progress.total:
                percent = round(100 * progress.done / progress.total, 1)
            elif progress.bytes_total:
                percent = round(100 * progress.bytes_done / progress.bytes_total, 1)
            steps.append(
                StepView(
                    name=step.name,
                    title=step.title,
                    status=step.status,
                    attempts=step.attempts,
                    started_on=step.started_on,
                    finished_on=step.finished_on,
                    progress=ProgressView(
                        done=progress.done,
                        total=progress.total,
                        bytes_done=progress.bytes_done,
                        bytes_total=progress.bytes_total,
                        percent=percent,
                        detail=progress.detail,
                    ),
                    message=step.message,
                )
            )
        details: dict[str, Any] = {}
        for step in operation.steps:
            details.update({key: value for key, value in step.output.items() if not key.startswith("_")})
        details.update(operation.parameters)
        return cls(
            id=operation.id,
            kind=operation.kind,
            status=operation.status,
            environment_id=operation.environment_id,
            namespace=operation.namespace,
            snapshot_id=operation.snapshot_id,
            created_on=operation.created_on,
            finished_on=operation.finished_on,
            created_by=PrincipalView(id=operation.created_by.id, name=operation.created_by.name),
            steps=steps,
            warnings=list(operation.warnings),
            error=ErrorView(step=operation.error_step, message=operation.error) if operation.error else None,
            details=details,
        )


class RestoreBody(ApiModel):
    target_environment: EnvironmentId = Field(description="Where to restore: an environment of the same namespace.")
