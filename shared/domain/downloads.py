"""Downloads of a backup: what kind of archive, and where one stands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

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
    expected_size: int | None = None  # said before it is ready: exact for database_only, else an estimate
    expected_size_is_estimate: bool = True
