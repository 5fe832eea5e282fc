"""Response bodies of the upload routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from shared.contracts.backups import BackupView, Comment
from shared.contracts.common import ApiModel


class StartUploadBody(ApiModel):
    """Optional: what the new backup item will say about where it came from."""

    file_name: Annotated[str, StringConstraints(max_length=255, strip_whitespace=True)] | None = Field(
        default=None, description="The archive's file name, shown in the backup's comment when none is given."
    )
    comment: Comment = ""


class UploadStarted(ApiModel):
    upload_id: str
    upload_url: str = Field(
        description="Write-only URL for one blob: PUT the archive there (Put Blob, or Put Block + Put Block List "
        "for large files), then call completeUrl."
    )
    expires_on: datetime
    complete_url: str


class UploadAccepted(ApiModel):
    backup_id: str = Field(description="The new backup (tier uploaded): Processing, then Finished or Failed.")
    backup: BackupView
    operation_id: str | None
