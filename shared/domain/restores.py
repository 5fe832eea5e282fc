"""A restore's plan: the verdict of each pre-flight check, the sizes it will move and its estimate; and the plan
of a restore to a point in time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shared.domain.backups import Backup
from shared.domain.environments import Environment
from shared.errors import AppError, Conflict


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class PreflightCheck:
    name: str
    status: Verdict
    reason: str
    refusal: AppError | None = None  # what a real restore answers when this check fails


@dataclass(frozen=True)
class PlanSizes:
    dump_size: int | None
    database_size: int | None  # of the database when it was backed up
    file_count: int | None
    files_size: int | None
    files_to_copy: int | None = None  # file documents the target does not have with the same content
    bytes_to_copy: int | None = None


class Checked:
    """What a plan's checks say together: its outcome, and the refusal of a real restore."""

    checks: tuple[PreflightCheck, ...]

    @property
    def outcome(self) -> Verdict:
        statuses = {check.status for check in self.checks}
        return Verdict.FAIL if Verdict.FAIL in statuses else Verdict.WARN if Verdict.WARN in statuses else Verdict.PASS

    @property
    def failed(self) -> tuple[PreflightCheck, ...]:
        return tuple(check for check in self.checks if check.status is Verdict.FAIL)

    def refuse_if_failed(self) -> None:
        """Raise the first failed check's refusal (409, 422 or 403), naming it and every failed one."""
        failed = self.failed
        if not failed:
            return
        refusal = failed[0].refusal or Conflict(failed[0].reason, code="preflight_failed")
        refusal.extensions.update(
            check=failed[0].name,
            failedChecks=[{"name": check.name, "reason": check.reason} for check in failed],
        )
        raise refusal


@dataclass(frozen=True)
class RestorePlan(Checked):
    backup: Backup
    target: Environment | None
    checks: tuple[PreflightCheck, ...]
    stop_needed: bool
    sizes: PlanSizes
    estimated_seconds: float | None = None
    estimate_basis: str = ""
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class WindowGap:
    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class PointInTimePlan(Checked):
    """A restore to a point in time: the backup of that instant is made first, so there is no backup to size
    yet; the plan says the window the instant was checked against instead."""

    source: Environment
    instant: datetime
    target: Environment | None
    checks: tuple[PreflightCheck, ...]
    stop_needed: bool
    earliest: datetime | None = None  # the recovery window, as the checks read it
    latest: datetime | None = None
    gaps: tuple[WindowGap, ...] = ()
    estimated_seconds: float | None = None
    estimate_basis: str = ""
    warnings: tuple[str, ...] = field(default=())
