"""The uploads table: one row per upload session (a write-only URL handed out, then completed)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from shared.adapters.tables import Row, RowChanged, RowTable, iterate
from shared.catalog.codec import from_iso, to_iso
from shared.domain.backups import Actor
from shared.domain.uploads import UploadSession, UploadStatus
from shared.errors import NotFound, StaleRecord


def _to_row(session: UploadSession) -> Row:
    return Row(
        session.environment_id,
        session.id,
        {
            "Namespace": session.namespace,
            "BlobName": session.blob_name,
            "CreatedOn": to_iso(session.created_on),
            "ExpiresOn": to_iso(session.expires_on),
            "CreatedById": session.created_by.id,
            "CreatedByName": session.created_by.name,
            "Status": session.status.value,
            "SnapshotId": session.backup_id,
            "OperationId": session.operation_id,
            "FileName": session.file_name,
            "Comment": session.comment,
        },
        session.etag,
    )


def _from_row(row: Row) -> UploadSession:
    return UploadSession(
        id=row.row_key,
        environment_id=row.partition_key,
        namespace=row["Namespace"],
        blob_name=row["BlobName"],
        created_on=from_iso(row["CreatedOn"]),  # type: ignore[arg-type]
        expires_on=from_iso(row["ExpiresOn"]),  # type: ignore[arg-type]
        created_by=Actor(row["CreatedById"], row.get("CreatedByName") or row["CreatedById"]),
        status=UploadStatus(row["Status"]),
        backup_id=row.get("SnapshotId"),
        operation_id=row.get("OperationId"),
        file_name=row.get("FileName"),
        comment=row.get("Comment") or "",
        etag=row.etag,
    )


class UploadCatalog:
    def __init__(self, table: RowTable) -> None:
        self._table = table

    def add(self, session: UploadSession) -> UploadSession:
        stored = self._table.insert(_to_row(session))
        return replace(session, etag=stored.etag)

    def get(self, environment_id: str, upload_id: str) -> UploadSession:
        row = self._table.get(environment_id, upload_id)
        if row is None:
            raise NotFound(f"Environment {environment_id!r} has no upload {upload_id!r}.", code="upload_not_found")
        return _from_row(row)

    def save(self, session: UploadSession) -> UploadSession:
        try:
            stored = self._table.replace(_to_row(session), session.etag)
        except RowChanged as error:
            raise StaleRecord(f"Upload {session.id} was changed by another request.") from error
        return replace(session, etag=stored.etag)

    def open_sessions(self) -> Iterator[UploadSession]:
        return (_from_row(row) for row in iterate(self._table, equals={"Status": UploadStatus.OPEN.value}))
