"""Downloads of a backup: what kind of archive, and where one stands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.domain.backups import Backup
from shared.domain.operations import Operation


class DataType(StrEnum):
    FILES_AND_DATABASE = "files_and_database"
    DATABASE_ONLY = "database_only"


@dataclass(frozen=True)
class Download:
    status: str  # Processing | Ready | Failed | Cancelled | Expired
    data_type: DataType
    operation: Operation
    url: str | None = None
    ready_on: datetime | None = None
    expires_on: datetime | None = None
    file_name: str | None = None
    size: int | None = None
    sha256: str | None = None
    expected_size: int | None = None  # said before it is ready: exact for a one-blob dump alone, else an estimate
    expected_size_is_estimate: bool = True


# How big a download's archive will be, said before it is prepared: exact for the dump alone, an estimate
# for a Full Snapshot archive (its members are known, what gzip makes of them is not).
_MEMBER_OVERHEAD = 64  # a tar header of zeros and a name, deflated, plus the content's padding
_METADATA = 600  # .metadata, a JSON object of some twenty short strings, with its header


def expected_size(backup: Backup, data_type: DataType) -> tuple[int | None, bool]:
    """The archive's size in bytes and whether that is an estimate. ``database_only`` is the dump itself,
    byte for byte. ``files_and_database`` is a gzip of the tar of .metadata, the dump and each file document:
    the dump and most file documents are compressed already, and blocks that would not shrink are stored,
    so the estimate is their sizes plus what each member's header costs once deflated."""
    if backup.dump_size is None:
        return None, True
    if data_type is DataType.DATABASE_ONLY and backup.dump_stored_size is not None:
        # Chunked: the dump's data is compressed again as it is written, to about what its chunks take.
        return backup.dump_stored_size, True
    if data_type is DataType.DATABASE_ONLY:
        return backup.dump_size, False
    files = backup.file_count or 0
    return _METADATA + backup.dump_size + (backup.files_size or 0) + (files + 1) * _MEMBER_OVERHEAD, True
