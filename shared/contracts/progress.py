"""The progress of a backup's or restore's file documents, as the API shows it (on a step, and on a
backup being made)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shared.contracts.common import ApiModel
from shared.domain.operations import Progress, Step, StepStatus, seconds_left


class FileProgressView(ApiModel):
    """A backup's or restore's file documents: how many and how many bytes are done, of how many, and the
    time left at the rate so far."""

    done: int = Field(description="File documents done (stored by a backup, placed by a restore).")
    total: int | None = Field(description="File documents in all.")
    bytes_done: int = Field(description="Their bytes done.")
    bytes_total: int | None = Field(
        description="Their bytes in all: exact for a restore (the backup's file list); a backup learns each "
        "file's size as it lists its store, so it gives none."
    )
    percent: float | None = Field(description="Of the file documents, by bytes when their total is known.")
    eta_seconds: float | None = Field(
        description="Estimated seconds left for the file documents, at the rate since the step began; "
        "None until the first file is done."
    )

    @classmethod
    def of(cls, progress: Progress, step: Step | None, now: datetime) -> FileProgressView | None:
        if progress.files_total is None:
            return None
        percent = None
        elapsed = (now - step.started_on).total_seconds() if step is not None and step.started_on else 0.0
        if step is not None and step.status is StepStatus.FINISHED:
            eta: float | None = 0.0
        elif progress.file_bytes_total:
            eta = seconds_left(progress.file_bytes_done, progress.file_bytes_total, elapsed)
        else:
            eta = seconds_left(progress.files_done, progress.files_total, elapsed)
        if progress.file_bytes_total:
            percent = round(100 * progress.file_bytes_done / progress.file_bytes_total, 1)
        elif progress.files_total:
            percent = round(100 * progress.files_done / progress.files_total, 1)
        return cls(
            done=progress.files_done,
            total=progress.files_total,
            bytes_done=progress.file_bytes_done,
            bytes_total=progress.file_bytes_total,
            percent=percent,
            eta_seconds=None if eta is None else round(eta, 1),
        )
