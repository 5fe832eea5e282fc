"""Request and response bodies of the backup routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from shared.contracts.common import ApiModel
from shared.contracts.progress import FileProgressView
from shared.domain.backups import Backup, BackupStatus, Tier
from shared.domain.downloads import DataType, expected_size
from shared.domain.operations import UNDO, Operation, OperationStatus
from shared.domain.verification import CheckStatus, Verification, VerificationStatus

Comment = Annotated[str, StringConstraints(max_length=500, strip_whitespace=True)]


class CreateBackupBody(ApiModel):
    comment: Comment = ""
    point_in_time: AwareDatetime | None = Field(
        default=None,
        description="A backup of the past: the database and file documents as they were at this instant (UTC "
        "offset required; inside the environment's recovery window, GET …/recovery-window). Absent: now.",
    )
    reconcile: bool = Field(
        default=False,
        description="Reconcile the file documents against a full listing of the file store (catching content "
        "changed under a uuid an earlier backup holds), as is done every APPBACKUPS_FILE_RECONCILIATION_DAYS "
        "days anyway. Not with pointInTime.",
    )


class EditBackupBody(ApiModel):
    """Fields left out are not changed. `keepUntil: null` unpins."""

    comment: Comment | None = None
    keep_until: AwareDatetime | None = Field(
        default=None, description="Keep the backup at least until then (UTC offset required); null unpins."
    )


class PrincipalView(ApiModel):
    id: str
    name: str


class CheckView(ApiModel):
    name: str = Field(description="checksums, load, row_counts, file_references or assertions.")
    status: CheckStatus
    detail: str


class VerificationView(ApiModel):
    """The backup's last restore drill."""

    status: VerificationStatus
    operation_id: str = Field(description="The drill: GET /api/drills/{operationId}.")
    started_on: datetime
    verified_on: datetime | None
    restore_seconds: float | None = Field(description="How long loading the dump into the scratch database took.")
    checks: list[CheckView]

    @classmethod
    def of(cls, verification: Verification) -> VerificationView:
        return cls(
            status=verification.status,
            operation_id=verification.operation_id,
            started_on=verification.started_on,
            verified_on=verification.verified_on,
            restore_seconds=verification.restore_seconds,
            checks=[CheckView(name=c.name, status=c.status, detail=c.detail) for c in verification.checks],
        )


class MissingFilesView(ApiModel):
    count: int = Field(description="File-document rows whose content was not in the file store.")
    uuids: list[str] = Field(description="The first 100 of them.")


class DownloadSizeView(ApiModel):
    size: int = Field(description="Bytes of the archive a download of this kind makes.")
    estimate: bool = Field(description="Whether size is an estimate (files_and_database) or exact (database_only).")


def download_sizes(backup: Backup) -> dict[DataType, DownloadSizeView] | None:
    sizes = {kind: expected_size(backup, kind) for kind in DataType}
    if any(size is None for size, _ in sizes.values()):
        return None
    return {kind: DownloadSizeView(size=size, estimate=estimate) for kind, (size, estimate) in sizes.items()}


class BackupView(ApiModel):
    id: str
    environment_id: str
    namespace: str
    status: BackupStatus
    status_message: str
    tier: Tier
    point_in_time: datetime | None = Field(
        default=None, description="A backup of the past (tier point-in-time): the instant its data is as of."
    )
    created_on: datetime
    finished_on: datetime | None
    expires_on: datetime
    keep_until: datetime | None
    retained_until: datetime = Field(description="When pruning may remove it: the later of expiresOn and keepUntil.")
    deployment_package: str | None
    model_version: str | None
    comment: str
    dump_size: int | None = Field(description="Bytes of the database dump.")
    dump_sha256: str | None
    database_size: int | None = Field(description="Size of the database on the server when it was backed up.")
    file_count: int | None
    files_size: int | None = Field(description="Total bytes of the file documents.")
    files_copied: int | None = Field(description="File documents this backup had to store; the rest were shared.")
    server_version: int | None = Field(
        default=None, description="Of the database server it was dumped from, as server_version_num (150008)."
    )
    table_count: int | None = Field(default=None, description="Tables whose exact row counts were recorded.")
    row_count: int | None = Field(default=None, description="Their rows, in all, as of the backup's snapshot.")
    files_reconciled: bool | None = Field(
        default=None,
        description="Whether its file list was reconciled against a full listing of the file store (true), or "
        "is the previous backup's with only new file documents read (false); null for a backup whose files do "
        "not come from the file store (uploaded, point-in-time) or made before this was recorded.",
    )
    files_reconciled_on: datetime | None = Field(
        default=None, description="When the file store was last listed in full for the file list it holds."
    )
    warnings: list[str] = Field(default_factory=list, description="What the backup holds less of than it should.")
    missing_files: MissingFilesView | None = Field(
        default=None, description="File documents the database referred to that had no content (missingFiles: warn)."
    )
    download_sizes: dict[DataType, DownloadSizeView] | None = Field(
        default=None,
        description="Per kind of download (dataType), the size of its archive, said before it is prepared.",
    )
    verification: VerificationView | None = Field(default=None, description="Its last restore drill.")
    created_by: PrincipalView
    progress: str = Field(description="What the backup is doing, while it is Processing.")
    file_progress: FileProgressView | None = Field(
        default=None,
        description="While Processing: its file documents stored so far, of how many, and the time left.",
    )
    attempts: int
    in_use_by: list[str] = Field(description="Restores and downloads that rely on the backup right now.")
    operation_id: str | None = Field(default=None, description="The work that makes (or made) the backup.")
    heartbeat_on: datetime | None = Field(
        default=None, description="While Processing: when the worker making it last checked in."
    )
    stalled_since: datetime | None = Field(
        default=None,
        description="While Processing with nobody making it (its worker stopped checking in): since when. "
        "It resumes from its last checkpoint within the lease.",
    )
    cancellable: bool = Field(default=False, description="Whether POST …/cancel would be accepted now.")

    @classmethod
    def of(cls, backup: Backup, operation: Operation | None = None, now: datetime | None = None) -> BackupView:
        """``operation`` is the work making the backup, while it is Processing: its progress and liveness."""
        live = operation if backup.status is BackupStatus.PROCESSING else None
        now = now or datetime.now(UTC)
        progress, attempts, stalled = "", backup.attempts, None
        file_progress = None
        if live is not None:
            index = live.running_index() if live.running_index() is not None else live.current_index
            step = live.steps[index] if index is not None else None
            progress = (step.progress.detail or step.title) if step else ""
            dumped = next((each for each in live.steps if each.name == "dump"), None)
            if dumped is not None:
                file_progress = FileProgressView.of(dumped.progress, dumped, now)
            if live.ending is not None:
                progress = "cancelling" if live.ending is OperationStatus.CANCELLED else "failing"
            attempts = max((step.attempts for step in live.steps if step.name != UNDO), default=0)
            stalled = live.stalled_since(now)
            if stalled:
                progress = f"stalled since {stalled:%H:%M:%S} UTC; resumes by itself ({progress})"
        elif backup.status is BackupStatus.PROCESSING:
            progress = "queued"
        return cls(
            id=backup.id,
            environment_id=backup.environment_id,
            namespace=backup.namespace,
            status=backup.status,
            status_message=backup.status_message,
            tier=backup.tier,
            point_in_time=backup.point_in_time,
            created_on=backup.created_on,
            finished_on=backup.finished_on,
            expires_on=backup.expires_on,
            keep_until=backup.keep_until,
            retained_until=backup.retained_until,
            deployment_package=backup.deployment_package,
            model_version=backup.model_version,
            comment=backup.comment,
            dump_size=backup.dump_size,
            dump_sha256=backup.dump_sha256,
            database_size=backup.database_size,
            file_count=backup.file_count,
            files_size=backup.files_size,
            files_copied=backup.files_copied,
            server_version=backup.server_version,
            table_count=backup.table_count,
            row_count=backup.row_count,
            files_reconciled=backup.files_reconciled,
            files_reconciled_on=backup.last_reconciliation,
            warnings=list(backup.warnings),
            missing_files=MissingFilesView(count=backup.missing_files, uuids=list(backup.missing_file_uuids))
            if backup.missing_files
            else None,
            download_sizes=download_sizes(backup),
            verification=VerificationView.of(backup.verification) if backup.verification else None,
            created_by=PrincipalView(id=backup.created_by.id, name=backup.created_by.name),
            progress=progress,
            file_progress=file_progress,
            attempts=attempts,
            in_use_by=list(backup.in_use_by),
            operation_id=backup.operation_id,
            heartbeat_on=live.heartbeat_on if live is not None else None,
            stalled_since=stalled,
            cancellable=live is not None
            and live.ending is None
            and not live.no_return
            and live.cancel_requested_by is None,
        )
