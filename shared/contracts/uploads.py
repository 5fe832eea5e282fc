"""Response bodies of the upload routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shared.contracts.backups import SnapshotView
from shared.contracts.common import ApiModel


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
    backup: SnapshotView
    operation_id: str | None
