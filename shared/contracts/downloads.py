"""Request and response bodies of the download routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.contracts.common import ApiModel
from shared.contracts.operations import ErrorView, OperationView, ProgressView
from shared.domain.downloads import DataType, Download


class DownloadBody(ApiModel):
    data_type: DataType = Field(
        default=DataType.FILES_AND_DATABASE,
        description="files_and_database: a Full Snapshot .tar.gz; database_only: the dump alone (.backup).",
    )


class DownloadView(ApiModel):
    status: Literal["Processing", "Ready", "Failed", "Cancelled", "Expired"]
    data_type: DataType
    operation_id: str
    requested_on: datetime
    ready_on: datetime | None = None
    expires_on: datetime | None = Field(default=None, description="8 hours after the archive became ready.")
    url: str | None = Field(default=None, description="Read-only, for this one archive, until expiresOn.")
    file_name: str | None = None
    size: int | None = Field(default=None, description="Of the archive, once Ready.")
    sha256: str | None = None
    expected_size: int | None = Field(
        default=None, description="Before it is ready: its size, exact for a one-blob dump alone, else an estimate."
    )
    expected_size_is_estimate: bool = Field(
        default=True, description="files_and_database: an estimate (the uncompressed tar of its members)."
    )
    progress: ProgressView | None = None
    error: ErrorView | None = None
    stalled_since: datetime | None = Field(default=None, description="While its worker has stopped checking in.")
    cancellable: bool = False

    @classmethod
    def of(cls, download: Download) -> DownloadView:
        view = OperationView.of(download.operation)
        return cls(
            status=download.status,  # type: ignore[arg-type]
            data_type=download.data_type,
            operation_id=download.operation.id,
            requested_on=download.operation.created_on,
            ready_on=download.ready_on,
            expires_on=download.expires_on,
            url=download.url,
            file_name=download.file_name,
            size=download.size,
            sha256=download.sha256,
            expected_size=download.expected_size,
            expected_size_is_estimate=download.expected_size_is_estimate,
            progress=view.steps[0].progress,
            error=view.error,
            stalled_since=view.stalled_since,
            cancellable=view.cancellable,
        )
