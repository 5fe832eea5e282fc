"""Backups (backups): status, tier, identity and the fields an operator sees."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from shared.domain.verification import Verification
from shared.errors import Conflict

MISSING_UUIDS_KEPT = 100  # of the file documents a backup found without content, the first this many are named


class BackupStatus(StrEnum):
    PROCESSING = "Processing"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class Tier(StrEnum):
    MANUAL = "manual"
    NIGHTLY = "nightly"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    UPLOADED = "uploaded"
    PRE_RESTORE = "pre-restore"
    POINT_IN_TIME = "point-in-time"  # a backup of the past: the database and file documents as of an instant


_MAX_MILLIS = (1 << 48) - 1


def new_backup_id(created_on: datetime) -> str:
    """A UUID (RFC 9562 version 8) whose first 48 bits are the creation time in milliseconds,
    inverted, so that ids sort newest first. Table Storage lists rows in key order, so the
    backup list is newest first, and paged, without a second index."""
    inverted = _MAX_MILLIS - int(created_on.timestamp() * 1000)
    value = (inverted << 80) | (0x8 << 76) | (secrets.randbits(12) << 64) | (0b10 << 62) | secrets.randbits(62)
    return str(uuid.UUID(int=value))


def is_backup_id(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


@dataclass(frozen=True)
class Actor:
    id: str
    name: str


@dataclass(frozen=True)
class Backup:
    id: str
    environment_id: str
    namespace: str
    status: BackupStatus
    tier: Tier
    created_on: datetime
    expires_on: datetime
    created_by: Actor
    comment: str = ""
    status_message: str = ""
    finished_on: datetime | None = None
    keep_until: datetime | None = None
    deployment_package: str | None = None
    model_version: str | None = None
    dump_size: int | None = None
    dump_sha256: str | None = None
    dump_stored_size: int | None = None  # bytes its dump's chunks take, compressed; None for a one-blob dump
    database_size: int | None = None
    file_count: int | None = None
    files_size: int | None = None
    files_copied: int | None = None
    bytes_copied: int | None = None
    server_version: int | None = None  # of the database server it was dumped from (server_version_num)
    table_count: int | None = None  # tables whose exact row counts were recorded with it (rows.json)
    row_count: int | None = None  # their rows, in all
    missing_files: int = 0  # file-document rows the database referred to whose content was not in the store
    missing_file_uuids: tuple[str, ...] = ()  # the first MISSING_UUIDS_KEPT of them
    not_carried: tuple[str, ...] = ()  # what its database had that the dump does not carry (settings, owners…)
    # Its file list checked against a listing of the file store (True), or the previous backup's list with only
    # the new uuids read (False); None where the list does not come from the file store (uploaded, point in time).
    files_reconciled: bool | None = None
    files_reconciled_on: datetime | None = None  # the environment's last reconciliation that its file list rests on
    verification: Verification | None = None  # its last restore drill
    attempts: int = 0  # of its making, once it has ended (while it is made, its operation has them)
    operation_id: str | None = None  # the operation that makes it (a backup, or an upload's ingest)
    point_in_time: datetime | None = None  # a backup of the past: the instant its data is as of
    in_use_by: tuple[str, ...] = ()
    downloads: dict[str, str] = field(default_factory=dict)  # data type -> the download operation
    latest_download: str | None = None
    etag: str = ""

    @property
    def warnings(self) -> tuple[str, ...]:
        """What a Finished backup holds less of than its environment had."""
        found = []
        if self.missing_files:
            named = ", ".join(self.missing_file_uuids)
            more = self.missing_files - len(self.missing_file_uuids)
            found.append(
                f"{self.missing_files} file document{'s' if self.missing_files != 1 else ''} referred to by the "
                f"database had no content in the file store and {'are' if self.missing_files != 1 else 'is'} not in "
                f"the backup: {named}{f' and {more} more' if more > 0 else ''}."
            )
        if self.not_carried:
            found.append(
                f"The database dump does not carry: {'; '.join(self.not_carried)}. A restore leaves these as the "
                "target has them."
            )
        return tuple(found)

    @property
    def lists_the_file_store(self) -> bool:
        """Whether its file list was collected from the environment's file store, and so can be the index of the
        next backup's (an uploaded backup's comes from its archive, a point-in-time one's from captures)."""
        return self.tier not in (Tier.UPLOADED, Tier.POINT_IN_TIME)

    @property
    def last_reconciliation(self) -> datetime | None:
        """When the file store was last listed for the file list this backup holds. Backups made before
        incremental file lists (files_reconciled unknown) each listed it when they were made."""
        if self.files_reconciled_on is not None:
            return self.files_reconciled_on
        if self.files_reconciled is None and self.lists_the_file_store and self.status is BackupStatus.FINISHED:
            return self.created_on
        return None

    @property
    def retained_until(self) -> datetime:
        """When the backup may be pruned: its expiry, or later when pinned with keepUntil."""
        if self.keep_until and self.keep_until > self.expires_on:
            return self.keep_until
        return self.expires_on

    def ensure_deletable(self) -> None:
        if self.status is BackupStatus.PROCESSING:
            raise Conflict(
                f"Backup {self.id} is still being made; delete it once it has finished or failed.",
                code="backup_processing",
            )
        if self.in_use_by:
            raise Conflict(
                f"Backup {self.id} is in use by {', '.join(self.in_use_by)}; delete it when that has ended.",
                code="backup_in_use",
                inUseBy=list(self.in_use_by),
            )

    def finished(self, now: datetime, **results: object) -> Backup:
        return replace(
            self,
            status=BackupStatus.FINISHED,
            finished_on=now,
            status_message="",
            **results,  # type: ignore[arg-type]
        )

    def failed(self, now: datetime, message: str, status: BackupStatus = BackupStatus.FAILED) -> Backup:
        return replace(self, status=status, finished_on=now, status_message=message)
