"""Response bodies of long-running operations (restores; downloads, uploads and backups show the same
steps and liveness)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from shared.contracts.backups import PrincipalView
from shared.contracts.common import ApiModel, BackupId, BackupIdOrNone, EnvironmentId
from shared.contracts.progress import FileProgressView
from shared.domain.operations import Operation, OperationStatus, StepStatus

if TYPE_CHECKING:
    from shared.domain.restores import RestorePlan


class ProgressView(ApiModel):
    done: int
    total: int | None
    bytes_done: int
    bytes_total: int | None
    percent: float | None = Field(description="Of the step, from done/total or bytes, when a total is known.")
    detail: str
    files: FileProgressView | None = Field(
        default=None, description="The file documents of a backup's dump step or a restore's switch step."
    )
    tables_done: int = Field(
        default=0,
        description="A restore's database load: the dump's data entries (tables, sequences' values, large "
        "objects) loaded so far.",
    )
    tables_total: int | None = Field(
        default=None, description="Of how many data entries the dump has; None until the load has begun."
    )


class JobStatus(StrEnum):
    """An operation's status as the API shows it: Stalled while its worker has stopped checking in
    (its lease ran out) and nobody has resumed it yet."""

    RUNNING = "Running"
    STALLED = "Stalled"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class StepState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    STALLED = "Stalled"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class StepView(ApiModel):
    name: str
    title: str
    status: StepState
    attempts: int
    started_on: datetime | None
    finished_on: datetime | None
    heartbeat_on: datetime | None = Field(
        default=None,
        description="While Running: when its worker last checked in (with its progress, at least every "
        "quarter of its lease).",
    )
    stalled_since: datetime | None = Field(
        default=None, description="While Stalled: when its worker's lease ran out with nobody renewing it."
    )
    retry_on: datetime | None = Field(default=None, description="While Pending after a failed attempt: the retry.")
    progress: ProgressView
    message: str


class ErrorView(ApiModel):
    step: str | None
    message: str


class CancelView(ApiModel):
    requested_by: PrincipalView
    requested_on: datetime | None


class OperationView(ApiModel):
    id: str
    kind: str
    status: JobStatus
    environment_id: str
    namespace: str
    backup_id: BackupIdOrNone
    created_on: datetime
    finished_on: datetime | None
    created_by: PrincipalView
    heartbeat_on: datetime | None = Field(description="When a worker last checked in on the operation.")
    stalled_since: datetime | None = Field(description="Set while Stalled.")
    undoing: OperationStatus | None = Field(
        description="While Running: the operation failed (Failed) or was cancelled (Cancelled) and its undo step "
        "is putting things back; that becomes its status when the undo has finished."
    )
    cancellable: bool = Field(description="Whether POST …/cancel would be accepted now.")
    not_cancellable_because: str | None = Field(
        description="Why not, once the operation passed its point of no return."
    )
    cancel: CancelView | None = Field(description="Who asked to cancel it, and when.")
    steps: list[StepView]
    warnings: list[str]
    error: ErrorView | None
    details: dict[str, Any] = Field(description="What the operation produced, e.g. the pre-restore backup's id.")

    @classmethod
    def of(cls, operation: Operation, now: datetime | None = None) -> OperationView:
        now = now or datetime.now(UTC)
        stalled = operation.stalled_since(now)
        running = operation.running_index()
        steps = []
        for index, step in enumerate(operation.steps):
            progress = step.progress
            percent = None
            if progress.total:
                percent = round(100 * progress.done / progress.total, 1)
            elif progress.bytes_total:
                percent = round(100 * progress.bytes_done / progress.bytes_total, 1)
            live = index == running and operation.status is OperationStatus.RUNNING
            status = StepState.STALLED if live and stalled else StepState(step.status.value)
            waiting = step.status is StepStatus.PENDING and operation.current_index == index
            steps.append(
                StepView(
                    name=step.name,
                    title=step.title,
                    status=status,
                    attempts=step.attempts,
                    started_on=step.started_on,
                    finished_on=step.finished_on,
                    heartbeat_on=operation.heartbeat_on if live else None,
                    stalled_since=stalled if live else None,
                    retry_on=operation.not_before if waiting and operation.not_before else None,
                    progress=ProgressView(
                        done=progress.done,
                        total=progress.total,
                        bytes_done=progress.bytes_done,
                        bytes_total=progress.bytes_total,
                        percent=percent,
                        detail=progress.detail,
                        files=FileProgressView.of(progress, step, now),
                        tables_done=progress.tables_done,
                        tables_total=progress.tables_total,
                    ),
                    message=step.message,
                )
            )
        details: dict[str, Any] = {}
        for step in operation.steps:
            details.update({key: value for key, value in step.output.items() if not key.startswith("_")})
        details.update(operation.parameters)
        job_status = JobStatus.STALLED if stalled else JobStatus(operation.status.value)
        cancelled_by = operation.cancel_requested_by
        cancellable = (
            operation.status is OperationStatus.RUNNING
            and operation.ending is None
            and not operation.no_return
            and cancelled_by is None
        )
        return cls(
            id=operation.id,
            kind=operation.kind,
            status=job_status,
            environment_id=operation.environment_id,
            namespace=operation.namespace,
            backup_id=operation.backup_id,
            created_on=operation.created_on,
            finished_on=operation.finished_on,
            created_by=PrincipalView(id=operation.created_by.id, name=operation.created_by.name),
            heartbeat_on=operation.heartbeat_on,
            stalled_since=stalled,
            undoing=operation.ending if operation.status is OperationStatus.RUNNING else None,
            cancellable=cancellable,
            not_cancellable_because=operation.no_return or None
            if operation.status is OperationStatus.RUNNING
            else None,
            cancel=CancelView(
                requested_by=PrincipalView(id=cancelled_by.id, name=cancelled_by.name),
                requested_on=operation.cancel_requested_on,
            )
            if cancelled_by
            else None,
            steps=steps,
            warnings=list(operation.warnings),
            error=ErrorView(step=operation.error_step, message=operation.error) if operation.error else None,
            details=details,
        )


class RestoreBody(ApiModel):
    target_environment: EnvironmentId = Field(description="Where to restore: an environment of the same namespace.")
    dry_run: bool = Field(
        default=False,
        description="Only check: answer 200 with the plan (the pre-flight checks, sizes, an estimate); change nothing.",
    )


class PreflightCheckView(ApiModel):
    name: str = Field(
        description="permissions, backup, namespace, target_state, model_version, postgres_version, missing_files "
        "or verification."
    )
    status: Literal["pass", "warn", "fail"]
    reason: str


class PlanSizesView(ApiModel):
    dump_size: int | None
    database_size: int | None = Field(description="Of the database when it was backed up.")
    file_count: int | None
    files_size: int | None
    files_to_copy: int | None = Field(description="File documents the target lacks with the same content.")
    bytes_to_copy: int | None


class RestorePlanView(ApiModel):
    """What a restore would do, and what would stop it: nothing was changed."""

    dry_run: bool = True
    outcome: Literal["pass", "warn", "fail"] = Field(description="fail: a real restore would be refused.")
    backup_id: BackupId
    source_environment_id: str
    target_environment_id: str
    stop_needed: bool = Field(description="The target runs: Stop Application first.")
    checks: list[PreflightCheckView]
    sizes: PlanSizesView
    estimated_seconds: float | None = Field(description="From the last restore drill of the backup's environment.")
    estimate_basis: str
    warnings: list[str]

    @classmethod
    def of(cls, plan: RestorePlan) -> RestorePlanView:
        sizes = plan.sizes
        return cls(
            outcome=plan.outcome.value,
            backup_id=plan.backup.id,
            source_environment_id=plan.backup.environment_id,
            target_environment_id=plan.target.id if plan.target else "",
            stop_needed=plan.stop_needed,
            checks=[
                PreflightCheckView(name=check.name, status=check.status.value, reason=check.reason)
                for check in plan.checks
            ],
            sizes=PlanSizesView(
                dump_size=sizes.dump_size,
                database_size=sizes.database_size,
                file_count=sizes.file_count,
                files_size=sizes.files_size,
                files_to_copy=sizes.files_to_copy,
                bytes_to_copy=sizes.bytes_to_copy,
            ),
            estimated_seconds=plan.estimated_seconds,
            estimate_basis=plan.estimate_basis,
            warnings=list(plan.warnings),
        )
