"""An upload session: a write-only URL handed out for an archive, then completed into a backup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.domain.backups import Actor


class UploadStatus(StrEnum):
    OPEN = "Open"
    COMPLETED = "Completed"
    EXPIRED = "Expired"


@dataclass(frozen=True)
class UploadSession:
    id: str
    environment_id: str
    namespace: str
    blob_name: str
    created_on: datetime
    expires_on: datetime
    created_by: Actor
    status: UploadStatus = UploadStatus.OPEN
    backup_id: str | None = None
    operation_id: str | None = None
    file_name: str | None = None
    comment: str = ""
    etag: str = ""

    @property
    def backup_comment(self) -> str:
        if self.comment:
            return self.comment
        return f"Uploaded {self.file_name}" if self.file_name else "Uploaded archive"
