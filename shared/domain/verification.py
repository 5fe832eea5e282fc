"""Verified backups: the result of a restore drill, kept on the backup, and the environment's last one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


def to_iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class VerificationStatus(StrEnum):
    RUNNING = "Running"
    PASSED = "Passed"
    FAILED = "Failed"


class CheckStatus(StrEnum):
    PASSED = "Passed"
    WARNING = "Warning"  # passed, with something a person should know (file documents the backup had no content for)
    FAILED = "Failed"
    SKIPPED = "Skipped"  # could not be run: what it needs failed first (the dump did not load)


# The drill's checks, in the order they run.
CHECKSUMS = "checksums"  # every stored object reads back whole and matches its checksum
LOAD = "load"  # the dump loads with zero errors, on the environment's PostgreSQL major
ROW_COUNTS = "row_counts"  # the loaded tables hold the rows recorded with the backup
FILE_REFERENCES = "file_references"  # the database's file documents and the backup's file list agree
ASSERTIONS = "assertions"  # the environment's verificationQueries return true
CHECK_NAMES = (CHECKSUMS, LOAD, ROW_COUNTS, FILE_REFERENCES, ASSERTIONS)


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        return cls(str(data["name"]), CheckStatus(data["status"]), str(data.get("detail") or ""))


@dataclass(frozen=True)
class Verification:
    """A backup's last restore drill."""

    status: VerificationStatus
    operation_id: str
    started_on: datetime
    verified_on: datetime | None = None
    restore_seconds: float | None = None  # how long loading the dump took
    dump_size: int | None = None
    database_size: int | None = None
    checks: tuple[Check, ...] = ()

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if check.status is CheckStatus.FAILED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "operationId": self.operation_id,
            "startedOn": to_iso(self.started_on),
            "verifiedOn": to_iso(self.verified_on),
            "restoreSeconds": self.restore_seconds,
            "dumpSize": self.dump_size,
            "databaseSize": self.database_size,
            "checks": [check.to_dict() for check in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Verification | None:
        if not data:
            return None
        return cls(
            status=VerificationStatus(data["status"]),
            operation_id=str(data["operationId"]),
            started_on=from_iso(data["startedOn"]),  # type: ignore[arg-type]
            verified_on=from_iso(data.get("verifiedOn")),
            restore_seconds=data.get("restoreSeconds"),
            dump_size=data.get("dumpSize"),
            database_size=data.get("databaseSize"),
            checks=tuple(Check.from_dict(check) for check in data.get("checks") or ()),
        )


@dataclass(frozen=True)
class LastDrill:
    """What an environment shows of its newest finished drill: its measured restore time, and the instant it
    drilled when it was a drill of the recovery window (of a backup of the past)."""

    backup_id: str
    status: VerificationStatus
    verified_on: datetime
    restore_seconds: float | None
    dump_size: int | None
    database_size: int | None
    point_in_time: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshotId": self.backup_id,
            "status": self.status.value,
            "verifiedOn": to_iso(self.verified_on),
            "restoreSeconds": self.restore_seconds,
            "dumpSize": self.dump_size,
            "databaseSize": self.database_size,
            **({"pointInTime": to_iso(self.point_in_time)} if self.point_in_time else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> LastDrill | None:
        if not data:
            return None
        return cls(
            backup_id=str(data["snapshotId"]),
            status=VerificationStatus(data["status"]),
            verified_on=from_iso(data["verifiedOn"]),  # type: ignore[arg-type]
            restore_seconds=data.get("restoreSeconds"),
            dump_size=data.get("dumpSize"),
            database_size=data.get("databaseSize"),
            point_in_time=from_iso(data["pointInTime"]) if data.get("pointInTime") else None,
        )
