"""The uploads table: one row per upload session (a write-only URL handed out, then completed)."""

from __future__ import annotations

from collections.abc import Iterator

from shared.adapters.tables import Row, RowTable
from shared.catalog.codec import Codec, from_iso, to_iso
from shared.catalog.repository import Repository
from shared.domain.backups import Actor
from shared.domain.uploads import UploadSession, UploadStatus
from shared.errors import NotFound


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


_CODEC = Codec(_to_row, _from_row, lambda session: f"Upload {session.id}")


class UploadCatalog:
    def __init__(self, table: RowTable) -> None:
        self._sessions = Repository(table, _CODEC)

    def add(self, session: UploadSession) -> UploadSession:
        return self._sessions.insert(session)

    def get(self, environment_id: str, upload_id: str) -> UploadSession:
        session = self._sessions.load(environment_id, upload_id)
        if session is None:
            raise NotFound(f"Environment {environment_id!r} has no upload {upload_id!r}.", code="upload_not_found")
        return session

    def save(self, session: UploadSession) -> UploadSession:
        return self._sessions.save(session)

    def open_sessions(self) -> Iterator[UploadSession]:
        return self._sessions.all(equals={"Status": UploadStatus.OPEN.value})
