"""Request and response bodies of the backup routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from shared.contracts.common import ApiModel
from shared.domain.snapshots import Snapshot, SnapshotStatus, Tier

Comment = Annotated[str, StringConstraints(max_length=500, strip_whitespace=True)]


class CreateBackupBody(ApiModel):
    comment: Comment = ""


class EditBackupBody(ApiModel):
    """Fields left out are not changed. `keepUntil: null` unpins."""

    comment: Comment | None = None
    keep_until: AwareDatetime | None = Field(
        default=None, description="Keep the backup at least until then (UTC offset required); null unpins."
    )


class PrincipalView(ApiModel):
    id: str
    name: str


class SnapshotView(ApiModel):
    id: str
    environment_id: str
    namespace: str
    status: SnapshotStatus
    status_message: str
    tier: Tier
    created_on: datetime
    finished_on: datetime | None
    expires_on: datetime
    keep_until: datetime | None
    retained_until: datetime = Field(description="When pruning may remove it: the later of expiresOn and keepUntil.")
    deployment_package: str | None
    model_version: str | None
    comment: str
    dump_size: int | None = Field(description="Bytes of the database dump.")
    dump_sha256: str | None
    database_size: int | None = Field(description="Size of the database on the server when it was backed up.")
    file_count: int | None
    files_size: int | None = Field(description="Total bytes of the file documents.")
    files_copied: int | None = Field(description="File documents this backup had to store; the rest were shared.")
    created_by: PrincipalView
    progress: str = Field(description="What the backup is doing, while it is Processing.")
    attempts: int
    in_use_by: list[str] = Field(description="Restores and downloads that rely on the backup right now.")

    @classmethod
    def of(cls, snapshot: Snapshot) -> SnapshotView:
        return cls(
            id=snapshot.id,
            environment_id=snapshot.environment_id,
            namespace=snapshot.namespace,
            status=snapshot.status,
            status_message=snapshot.status_message,
            tier=snapshot.tier,
            created_on=snapshot.created_on,
            finished_on=snapshot.finished_on,
            expires_on=snapshot.expires_on,
            keep_until=snapshot.keep_until,
            retained_until=snapshot.retained_until,
            deployment_package=snapshot.deployment_package,
            model_version=snapshot.model_version,
            comment=snapshot.comment,
            dump_size=snapshot.dump_size,
            dump_sha256=snapshot.dump_sha256,
            database_size=snapshot.database_size,
            file_count=snapshot.file_count,
            files_size=snapshot.files_size,
            files_copied=snapshot.files_copied,
            created_by=PrincipalView(id=snapshot.created_by.id, name=snapshot.created_by.name),
            progress=snapshot.progress,
            attempts=snapshot.attempts,
            in_use_by=list(snapshot.in_use_by),
        )
