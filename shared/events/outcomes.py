"""What each end of a job says, as an event: its type, its subject and the data the API shows — ids,
status, reason, sizes, durations; never a URL, key or password. Each event's id is derived from its
occurrence, so the resend of an event after a crash has the same id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.domain.backups import Backup
from shared.domain.environments import Environment
from shared.domain.events import Event, EventType, event_id, source_of
from shared.domain.operations import Operation, OperationStatus

BackupLookup = Callable[[str, str], Backup | None]  # environment id, backup id

_BY_OUTCOME: dict[str, dict[OperationStatus, EventType]] = {
    "backup": {
        OperationStatus.FINISHED: EventType.BACKUP_FINISHED,
        OperationStatus.FAILED: EventType.BACKUP_FAILED,
        OperationStatus.CANCELLED: EventType.BACKUP_CANCELLED,
    },
    "restore": {
        OperationStatus.FINISHED: EventType.RESTORE_FINISHED,
        OperationStatus.FAILED: EventType.RESTORE_FAILED,
        OperationStatus.CANCELLED: EventType.RESTORE_CANCELLED,
    },
    "download": {
        OperationStatus.FINISHED: EventType.DOWNLOAD_READY,
        OperationStatus.FAILED: EventType.DOWNLOAD_FAILED,
        OperationStatus.CANCELLED: EventType.DOWNLOAD_CANCELLED,
    },
    "upload": {
        OperationStatus.FINISHED: EventType.UPLOAD_FINISHED,
        OperationStatus.FAILED: EventType.UPLOAD_FAILED,
        OperationStatus.CANCELLED: EventType.UPLOAD_CANCELLED,
    },
    # a restore drill: a failed check fails it; a cancelled one verified nothing, so it raises no event
    "verify": {
        OperationStatus.FINISHED: EventType.VERIFICATION_PASSED,
        OperationStatus.FAILED: EventType.VERIFICATION_FAILED,
    },
}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def backup_outcome(status: OperationStatus, warnings: tuple[str, ...]) -> EventType:
    """Where a backup's outcome becomes an event type. A backup that finished with warnings (file
    documents the database referred to that had no content) is ``.warned``."""
    if status is OperationStatus.FINISHED and warnings:
        return EventType.BACKUP_WARNED
    return _BY_OUTCOME["backup"][status]


def _common(operation: Operation) -> dict[str, Any]:
    ended = operation.finished_on or operation.updated_on
    data: dict[str, Any] = {
        "namespace": operation.namespace,
        "environmentId": operation.environment_id,
        "operationId": operation.id,
        "status": operation.status.value,
        "reason": operation.error or None,
        "createdOn": _iso(operation.created_on),
        "finishedOn": _iso(ended),
        "durationSeconds": _seconds(operation.created_on, ended),
        "createdBy": {"id": operation.created_by.id, "name": operation.created_by.name},
    }
    if operation.error_step:
        data["errorStep"] = operation.error_step
    if operation.status is OperationStatus.CANCELLED and operation.cancel_requested_by is not None:
        who = operation.cancel_requested_by
        data["cancelledBy"] = {"id": who.id, "name": who.name}
    return data


def _backup_data(backup: Backup | None) -> dict[str, Any]:
    if backup is None:
        return {}
    return {
        "backupId": backup.id,
        "tier": backup.tier.value,
        "dumpSize": backup.dump_size,
        "databaseSize": backup.database_size,
        "fileCount": backup.file_count,
        "filesSize": backup.files_size,
    }


def operation_event(operation: Operation, backup_of: BackupLookup) -> Event | None:
    """The event of an operation that has ended; None for a kind that raises none."""
    outcomes = _BY_OUTCOME.get(operation.kind)
    if outcomes is None or operation.status not in outcomes:
        return None
    data = _common(operation)
    if operation.kind == "backup":
        backup = backup_of(operation.environment_id, str(operation.backup_id))
        warnings = (backup.warnings if backup is not None else ()) + operation.warnings
        event_type = backup_outcome(operation.status, warnings)
        data.update(_backup_data(backup), backupId=operation.backup_id)
        if backup is not None and backup.point_in_time is not None:
            data["pointInTime"] = backup.point_in_time.isoformat()
        if backup is not None:
            data.update(
                status=backup.status.value,
                reason=backup.status_message or data["reason"],
                filesCopied=backup.files_copied,
                attempts=backup.attempts,
                comment=backup.comment,
            )
        if event_type is EventType.BACKUP_WARNED:
            data["warnings"] = list(warnings)
            data["missingFiles"] = backup.missing_files if backup is not None else 0
        subject = f"backups/{operation.backup_id}"
    elif operation.kind == "verify":
        event_type = outcomes[operation.status]
        backup = backup_of(operation.environment_id, str(operation.backup_id))
        verification = backup.verification if backup is not None else None
        mine = verification is not None and verification.operation_id == operation.id
        data.update(
            drillId=operation.id,
            backupId=operation.backup_id,
            restoreSeconds=verification.restore_seconds if mine else None,  # type: ignore[union-attr]
            checks=[check.to_dict() for check in verification.checks] if mine else [],  # type: ignore[union-attr]
        )
        if backup is not None and backup.point_in_time is not None:  # a drill of an instant of the window
            data["pointInTime"] = backup.point_in_time.isoformat()
        subject = f"drills/{operation.id}"
    elif operation.kind == "restore":
        event_type = outcomes[operation.status]
        switch = next((step.output for step in operation.steps if step.name == "switch"), {})
        clean = next((step.output for step in operation.steps if step.name == "clean_up_files"), {})
        pre = next((step.output for step in operation.steps if step.name == "pre_restore_backup"), {})
        data.update(
            restoreId=operation.id,
            backupId=operation.backup_id,
            sourceEnvironmentId=operation.parameters.get("sourceEnvironmentId"),
            preRestoreBackupId=pre.get("preRestoreSnapshotId"),
            warnings=list(operation.warnings),
        )
        if operation.parameters.get("pointInTime"):  # a restore to a point in time: the instant restored
            data["pointInTime"] = operation.parameters["pointInTime"]
        if operation.status is OperationStatus.FINISHED:
            data.update(
                filesCopied=int(switch.get("copied", 0)) + int(clean.get("replaced", 0)),
                filesRemoved=int(clean.get("removed", 0)),
            )
        subject = f"restores/{operation.id}"
    elif operation.kind == "download":
        event_type = outcomes[operation.status]
        prepared = next((step.output for step in operation.steps if step.name == "prepare"), {})
        published = next((step.output for step in operation.steps if step.name == "publish"), {})
        data.update(
            downloadId=operation.id,
            backupId=operation.backup_id,
            dataType=operation.parameters.get("dataType"),
            status="Ready" if operation.status is OperationStatus.FINISHED else operation.status.value,
        )
        if operation.status is OperationStatus.FINISHED:
            data.update(
                fileName=prepared.get("fileName"),
                archiveSize=prepared.get("archiveSize"),
                expiresOn=published.get("expiresOn"),
            )
        subject = f"backups/{operation.backup_id}/downloads/{operation.id}"
    else:  # upload
        event_type = outcomes[operation.status]
        backup = backup_of(operation.environment_id, str(operation.backup_id))
        data.update(
            _backup_data(backup),
            uploadId=operation.parameters.get("uploadId"),
            backupId=operation.backup_id,
            uploadSize=operation.parameters.get("uploadSize"),
        )
        if backup is not None:
            data.update(reason=backup.status_message or data["reason"])
        subject = f"uploads/{operation.parameters.get('uploadId') or operation.id}"
    return Event(
        id=event_id(f"{operation.id}/{event_type.value}"),
        type=event_type,
        source=source_of(operation.namespace, operation.environment_id),
        subject=subject,
        time=operation.finished_on or operation.updated_on,
        namespace=operation.namespace,
        data=data,
    )


def schedule_missed_event(
    environment: Environment, last_success: datetime | None, freshness: timedelta, now: datetime
) -> Event:
    """An environment with no successful backup within the freshness window. One event per missed window:
    the window is named by the last success (or the registration), so every hourly check of the same
    window raises the same id."""
    since = (last_success or environment.created_on) + freshness
    anchor = _iso(last_success) or f"registered {_iso(environment.created_on)}"
    return Event(
        id=event_id(f"{environment.id}/{EventType.SCHEDULE_MISSED.value}/{anchor}"),
        type=EventType.SCHEDULE_MISSED,
        source=source_of(environment.namespace, environment.id),
        subject="schedules/backups",
        time=since,
        namespace=environment.namespace,
        data={
            "namespace": environment.namespace,
            "environmentId": environment.id,
            "state": environment.state.value,
            "lastSuccessfulBackupOn": _iso(last_success),
            "missedSince": _iso(since),
            "hoursWithoutBackup": round((now - (last_success or environment.created_on)).total_seconds() / 3600, 1),
            "freshnessHours": round(freshness.total_seconds() / 3600, 1),
        },
    )


def backup_expired_event(backup: Backup, now: datetime) -> Event:
    return Event(
        id=event_id(f"{backup.id}/{EventType.BACKUP_EXPIRED.value}"),
        type=EventType.BACKUP_EXPIRED,
        source=source_of(backup.namespace, backup.environment_id),
        subject=f"backups/{backup.id}",
        time=now,
        namespace=backup.namespace,
        data={
            "namespace": backup.namespace,
            "environmentId": backup.environment_id,
            **_backup_data(backup),
            "status": backup.status.value,
            "createdOn": _iso(backup.created_on),
            "expiresOn": _iso(backup.expires_on),
            "keepUntil": _iso(backup.keep_until),
            "prunedOn": _iso(now),
        },
    )
