"""The snapshots table: partition per environment, row key = snapshot id (which sorts newest first)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from shared.adapters.tables import Row, RowChanged, RowExists, RowTable, iterate
from shared.catalog.codec import dumps, from_iso, loads, to_iso
from shared.domain.snapshots import Actor, Snapshot, SnapshotStatus, Tier
from shared.domain.verification import Verification
from shared.errors import AlreadyExists, NotFound, StaleRecord

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
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _to_row(snapshot: Snapshot) -> Row:
    body: dict[str, Any] = {_camel(name): getattr(snapshot, name) for name in _RESULT_FIELDS}
    body.update(
        comment=snapshot.comment,
        statusMessage=snapshot.status_message,
        createdById=snapshot.created_by.id,
        createdByName=snapshot.created_by.name,
        downloads=snapshot.downloads,
        latestDownload=snapshot.latest_download,
        missingFiles=snapshot.missing_files,
        missingFileUuids=list(snapshot.missing_file_uuids),
        notCarried=list(snapshot.not_carried),
        verification=snapshot.verification.to_dict() if snapshot.verification else None,
    )
    properties = {
        "Namespace": snapshot.namespace,
        "Status": snapshot.status.value,
        "Tier": snapshot.tier.value,
        "CreatedOn": to_iso(snapshot.created_on),
        "FinishedOn": to_iso(snapshot.finished_on),
        "ExpiresOn": to_iso(snapshot.expires_on),
        "KeepUntil": to_iso(snapshot.keep_until),
        "OperationId": snapshot.operation_id,
        "Attempts": snapshot.attempts,
        "InUseBy": ",".join(snapshot.in_use_by) or None,
        "InUse": bool(snapshot.in_use_by),
        "Body": dumps(body),
    }
    return Row(snapshot.environment_id, snapshot.id, properties, snapshot.etag)


def _from_row(row: Row) -> Snapshot:
    body = loads(row.get("Body"))
    return Snapshot(
        id=row.row_key,
        environment_id=row.partition_key,
        namespace=row["Namespace"],
        status=SnapshotStatus(row["Status"]),
        tier=Tier(row["Tier"]),
        created_on=from_iso(row["CreatedOn"]),  # type: ignore[arg-type]
        expires_on=from_iso(row["ExpiresOn"]),  # type: ignore[arg-type]
        finished_on=from_iso(row.get("FinishedOn")),
        keep_until=from_iso(row.get("KeepUntil")),
        created_by=Actor(body.get("createdById", ""), body.get("createdByName", "")),
        comment=body.get("comment", ""),
        status_message=body.get("statusMessage", ""),
        operation_id=row.get("OperationId"),
        attempts=int(row.get("Attempts") or 0),
        downloads=dict(body.get("downloads") or {}),
        latest_download=body.get("latestDownload"),
        missing_files=int(body.get("missingFiles") or 0),
        missing_file_uuids=tuple(body.get("missingFileUuids") or ()),
        not_carried=tuple(body.get("notCarried") or ()),
        verification=Verification.from_dict(body.get("verification")),
        in_use_by=tuple(user for user in (row.get("InUseBy") or "").split(",") if user),
        etag=row.etag,
        **{name: body.get(_camel(name)) for name in _RESULT_FIELDS},
    )


class SnapshotCatalog:
    def __init__(self, table: RowTable) -> None:
        self._table = table

    def find(self, environment_id: str, snapshot_id: str) -> Snapshot | None:
        row = self._table.get(environment_id, snapshot_id)
        return _from_row(row) if row else None

    def get(self, environment_id: str, snapshot_id: str) -> Snapshot:
        snapshot = self.find(environment_id, snapshot_id)
        if snapshot is None:
            raise NotFound(f"Environment {environment_id!r} has no backup {snapshot_id!r}.", code="backup_not_found")
        return snapshot

    def add(self, snapshot: Snapshot) -> Snapshot:
        try:
            stored = self._table.insert(_to_row(snapshot))
        except RowExists as error:
            raise AlreadyExists(f"Backup {snapshot.id} exists already.", code="backup_exists") from error
        return replace(snapshot, etag=stored.etag)

    def save(self, snapshot: Snapshot) -> Snapshot:
        """Write only if nobody changed the snapshot since it was read (its ETag)."""
        try:
            stored = self._table.replace(_to_row(snapshot), snapshot.etag)
        except RowChanged as error:
            raise StaleRecord(
                f"Backup {snapshot.id} was changed by another request; read it again and retry.",
                code="concurrent_update",
            ) from error
        return replace(snapshot, etag=stored.etag)

    def delete(self, snapshot: Snapshot) -> None:
        try:
            self._table.delete(snapshot.environment_id, snapshot.id, etag=snapshot.etag)
        except RowChanged as error:
            raise StaleRecord(
                f"Backup {snapshot.id} was changed by another request; read it again and retry.",
                code="concurrent_update",
            ) from error

    def mark_in_use(self, environment_id: str, snapshot_id: str, user: str) -> Snapshot:
        """Record that ``user`` (e.g. "restore <id>") relies on the snapshot: it cannot be deleted or pruned."""
        return self._update_users(
            environment_id, snapshot_id, lambda users: (*users, user) if user not in users else users
        )

    def release(self, environment_id: str, snapshot_id: str, user: str) -> Snapshot | None:
        if self.find(environment_id, snapshot_id) is None:
            return None
        return self._update_users(environment_id, snapshot_id, lambda users: tuple(u for u in users if u != user))

    def _update_users(
        self, environment_id: str, snapshot_id: str, change: Callable[[tuple[str, ...]], tuple[str, ...]]
    ) -> Snapshot:
        for attempt in range(5):
            snapshot = self.get(environment_id, snapshot_id)
            users = change(snapshot.in_use_by)
            if users == snapshot.in_use_by:
                return snapshot
            try:
                return self.save(replace(snapshot, in_use_by=users))
            except StaleRecord:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def update(self, environment_id: str, snapshot_id: str, change: Callable[[Snapshot], Snapshot]) -> Snapshot:
        """Apply ``change`` to the snapshot as it is now, reading it again when another writer was first."""
        for attempt in range(8):
            snapshot = self.get(environment_id, snapshot_id)
            changed = change(snapshot)
            if changed == snapshot:
                return snapshot
            try:
                return self.save(changed)
            except StaleRecord:
                if attempt == 7:
                    raise
        raise AssertionError("unreachable")

    def page(self, environment_id: str, *, limit: int, continuation: str | None) -> tuple[list[Snapshot], str | None]:
        result = self._table.query(environment_id, limit=limit, continuation=continuation)
        return [_from_row(row) for row in result.rows], result.continuation

    def of_environment(self, environment_id: str) -> Iterator[Snapshot]:
        """Newest first."""
        return (_from_row(row) for row in iterate(self._table, environment_id))

    def latest_finished(self, environment_id: str) -> Snapshot | None:
        for row in iterate(self._table, environment_id, equals={"Status": SnapshotStatus.FINISHED.value}):
            return _from_row(row)
        return None

    def in_use(self) -> Iterator[Snapshot]:
        """Snapshots that some restore or download says it relies on."""
        return (_from_row(row) for row in iterate(self._table, equals={"InUse": True}))

    def work_on(self, environment_id: str) -> list[str]:
        """What runs on the environment's backups now, read-only: each backup being made (a backup, a
        scheduled or pre-restore backup, an upload being ingested) and each one a restore or download
        relies on. Empty when nothing does."""
        work = []
        for snapshot in self.of_environment(environment_id):
            if snapshot.status is SnapshotStatus.PROCESSING:
                work.append(f"backup {snapshot.id} is being made ({snapshot.tier.value})")
            if snapshot.in_use_by:
                work.append(f"backup {snapshot.id} is in use by {', '.join(snapshot.in_use_by)}")
        return work

    def processing(self) -> Iterator[Snapshot]:
        return (_from_row(row) for row in iterate(self._table, equals={"Status": SnapshotStatus.PROCESSING.value}))
