"""A restore's plan: the verdict of each pre-flight check, the sizes it will move and its estimate."""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class RestorePlan:
    backup: Backup
    target: Environment | None
    checks: tuple[PreflightCheck, ...]
    stop_needed: bool
    sizes: PlanSizes
    estimated_seconds: float | None = None
    estimate_basis: str = ""
    warnings: tuple[str, ...] = field(default=())

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
