"""The backup catalog (stored as the table `snapshots`): partition per environment, row key = backup id."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from shared.adapters.tables import Row, RowTable
from shared.catalog.codec import Codec, dumps, from_iso, loads, to_iso
from shared.catalog.repository import KeyOrderedRepository
from shared.domain.backups import Actor, Backup, BackupStatus, Tier
from shared.domain.verification import Verification
from shared.errors import NotFound

_RESULT_FIELDS = (
    "deployment_package",
    "model_version",
    "dump_size",
    "dump_sha256",
    "dump_stored_size",
    "database_size",
    "file_count",
    "files_size",
    "files_copied",
    "bytes_copied",
    "server_version",
    "table_count",
    "row_count",
    "files_reconciled",
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _to_row(backup: Backup) -> Row:
    body: dict[str, Any] = {_camel(name): getattr(backup, name) for name in _RESULT_FIELDS}
    body.update(
        comment=backup.comment,
        statusMessage=backup.status_message,
        createdById=backup.created_by.id,
        createdByName=backup.created_by.name,
        downloads=backup.downloads,
        latestDownload=backup.latest_download,
        missingFiles=backup.missing_files,
        missingFileUuids=list(backup.missing_file_uuids),
        notCarried=list(backup.not_carried),
        filesReconciledOn=to_iso(backup.files_reconciled_on),
        verification=backup.verification.to_dict() if backup.verification else None,
    )
    properties = {
        "Namespace": backup.namespace,
        "Status": backup.status.value,
        "Tier": backup.tier.value,
        "CreatedOn": to_iso(backup.created_on),
        "FinishedOn": to_iso(backup.finished_on),
        "ExpiresOn": to_iso(backup.expires_on),
        "KeepUntil": to_iso(backup.keep_until),
        "OperationId": backup.operation_id,
        "PointInTime": to_iso(backup.point_in_time),
        "Attempts": backup.attempts,
        "InUseBy": ",".join(backup.in_use_by) or None,
        "InUse": bool(backup.in_use_by),
        "Body": dumps(body),
    }
    return Row(backup.environment_id, backup.id, properties, backup.etag)


def _from_row(row: Row) -> Backup:
    body = loads(row.get("Body"))
    return Backup(
        id=row.row_key,
        environment_id=row.partition_key,
        namespace=row["Namespace"],
        status=BackupStatus(row["Status"]),
        tier=Tier(row["Tier"]),
        created_on=from_iso(row["CreatedOn"]),  # type: ignore[arg-type]
        expires_on=from_iso(row["ExpiresOn"]),  # type: ignore[arg-type]
        finished_on=from_iso(row.get("FinishedOn")),
        keep_until=from_iso(row.get("KeepUntil")),
        created_by=Actor(body.get("createdById", ""), body.get("createdByName", "")),
        comment=body.get("comment", ""),
        status_message=body.get("statusMessage", ""),
        operation_id=row.get("OperationId"),
        point_in_time=from_iso(row.get("PointInTime")),
        attempts=int(row.get("Attempts") or 0),
        downloads=dict(body.get("downloads") or {}),
        latest_download=body.get("latestDownload"),
        missing_files=int(body.get("missingFiles") or 0),
        missing_file_uuids=tuple(body.get("missingFileUuids") or ()),
        not_carried=tuple(body.get("notCarried") or ()),
        files_reconciled_on=from_iso(body.get("filesReconciledOn")),
        verification=Verification.from_dict(body.get("verification")),
        in_use_by=tuple(user for user in (row.get("InUseBy") or "").split(",") if user),
        etag=row.etag,
        **{name: body.get(_camel(name)) for name in _RESULT_FIELDS},
    )


def _not_found(environment_id: str, backup_id: str) -> NotFound:
    return NotFound(f"Environment {environment_id!r} has no backup {backup_id!r}.", code="backup_not_found")


_CODEC = Codec(_to_row, _from_row, lambda backup: f"Backup {backup.id}")


class BackupCatalog:
    def __init__(self, table: RowTable) -> None:
        self._backups = KeyOrderedRepository(table, _CODEC, exists_code="backup_exists")

    def find(self, environment_id: str, backup_id: str) -> Backup | None:
        return self._backups.load(environment_id, backup_id)

    def get(self, environment_id: str, backup_id: str) -> Backup:
        backup = self.find(environment_id, backup_id)
        if backup is None:
            raise _not_found(environment_id, backup_id)
        return backup

    def add(self, backup: Backup) -> Backup:
        return self._backups.insert(backup)

    def save(self, backup: Backup) -> Backup:
        """Write only if nobody changed the backup since it was read (its ETag)."""
        return self._backups.save(backup)

    def delete(self, backup: Backup) -> None:
        self._backups.delete(backup)

    def mark_in_use(self, environment_id: str, backup_id: str, user: str) -> Backup:
        """Record that ``user`` (e.g. "restore <id>") relies on the backup: it cannot be deleted or pruned."""
        return self._update_users(
            environment_id, backup_id, lambda users: (*users, user) if user not in users else users
        )

    def release(self, environment_id: str, backup_id: str, user: str) -> Backup | None:
        if self.find(environment_id, backup_id) is None:
            return None
        return self._update_users(environment_id, backup_id, lambda users: tuple(u for u in users if u != user))

    def _update_users(
        self, environment_id: str, backup_id: str, change: Callable[[tuple[str, ...]], tuple[str, ...]]
    ) -> Backup:
        return self._change(
            environment_id, backup_id, lambda backup: replace(backup, in_use_by=change(backup.in_use_by)), attempts=5
        )

    def update(self, environment_id: str, backup_id: str, change: Callable[[Backup], Backup]) -> Backup:
        """Apply ``change`` to the backup as it is now, reading it again when another writer was first."""
        return self._change(environment_id, backup_id, change, attempts=8)

    def _change(
        self, environment_id: str, backup_id: str, change: Callable[[Backup], Backup], *, attempts: int
    ) -> Backup:
        backup = self._backups.update(environment_id, backup_id, change, attempts=attempts)
        if backup is None:
            raise _not_found(environment_id, backup_id)
        return backup

    def page(self, environment_id: str, *, limit: int, continuation: str | None) -> tuple[list[Backup], str | None]:
        """Newest first."""
        return self._backups.page(environment_id, limit=limit, continuation=continuation)

    def of_environment(self, environment_id: str) -> Iterator[Backup]:
        """Newest first."""
        return self._backups.all(environment_id)

    def latest_finished(self, environment_id: str) -> Backup | None:
        return self._backups.first(environment_id, equals={"Status": BackupStatus.FINISHED.value})

    def latest_file_index(self, environment_id: str) -> Backup | None:
        """The newest Finished backup whose file list was collected from the environment's file store: the
        index the next backup's file documents are collected against."""
        return self._backups.first(
            environment_id,
            equals={"Status": BackupStatus.FINISHED.value},
            where=lambda backup: backup.lists_the_file_store,
        )

    def latest_recovery_point(self, environment_id: str) -> Backup | None:
        """The newest Finished backup of the environment as it was when the backup was made: a backup of the
        past (tier point-in-time) is newer than its data."""
        return self._backups.first(
            environment_id,
            equals={"Status": BackupStatus.FINISHED.value},
            where=lambda backup: backup.tier is not Tier.POINT_IN_TIME,
        )

    def in_use(self) -> Iterator[Backup]:
        """Backups that some restore or download says it relies on."""
        return self._backups.all(equals={"InUse": True})

    def work_on(self, environment_id: str) -> list[str]:
        """What runs on the environment's backups now, read-only: each backup being made (a backup, a
        scheduled or pre-restore backup, an upload being ingested) and each one a restore or download
        relies on. Empty when nothing does."""
        work = []
        for backup in self.of_environment(environment_id):
            if backup.status is BackupStatus.PROCESSING:
                work.append(f"backup {backup.id} is being made ({backup.tier.value})")
            if backup.in_use_by:
                work.append(f"backup {backup.id} is in use by {', '.join(backup.in_use_by)}")
        return work

    def processing(self) -> Iterator[Backup]:
        return self._backups.all(equals={"Status": BackupStatus.PROCESSING.value})
