"""Request and response bodies of point-in-time recovery: an environment's recovery window, and a restore to a
point in time (its plan; the restore itself answers as every restore does, an OperationView)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal, Protocol

from pydantic import AwareDatetime, Field

from shared.contracts.common import ApiModel, EnvironmentId
from shared.contracts.operations import PreflightCheckView
from shared.domain.restores import PointInTimePlan


class _Gap(Protocol):
    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...

    @property
    def reason(self) -> str: ...


class GapView(ApiModel):
    start: datetime
    end: datetime
    reason: str = Field(description="Why these instants cannot be restored (e.g. a WAL segment missing).")


def _gaps(gaps: Iterable[_Gap]) -> list[GapView]:
    return [GapView(start=gap.start, end=gap.end, reason=gap.reason) for gap in gaps]


class RecoveryWindowView(ApiModel):
    """Which instants of an environment's past can be backed up and restored now."""

    environment_id: str
    server: str = Field(description="The environment's database server, as its archive names it.")
    earliest: datetime | None = Field(description="The earliest restorable instant; null before a base backup.")
    latest: datetime | None = Field(description="The latest restorable instant: how far the archived WAL reaches.")
    gaps: list[GapView] = Field(description="Instants between earliest and latest that cannot be restored.")
    recovery_point_seconds: float | None = Field(
        description="How far the latest restorable instant lags the clock now, in seconds (the recovery point)."
    )
    read_on: datetime = Field(description="When the window was read.")

    @classmethod
    def of(
        cls,
        environment_id: str,
        server: str,
        earliest: datetime | None,
        latest: datetime | None,
        gaps: Iterable[_Gap],
        recovery_point_seconds: float | None,
        read_on: datetime,
    ) -> RecoveryWindowView:
        return cls(
            environment_id=environment_id,
            server=server,
            earliest=earliest,
            latest=latest,
            gaps=_gaps(gaps),
            recovery_point_seconds=recovery_point_seconds,
            read_on=read_on,
        )


class RestoreToTimeBody(ApiModel):
    point_in_time: AwareDatetime = Field(
        description="The instant to restore the environment's database and file documents to (UTC offset "
        "required); inside its recovery window."
    )
    target_environment: EnvironmentId = Field(
        description="Where to restore: an environment of the same namespace (the environment itself included)."
    )
    dry_run: bool = Field(
        default=False,
        description="Only check: answer 200 with the plan (the pre-flight checks, the window, an estimate); change "
        "nothing.",
    )


class PointInTimePlanView(ApiModel):
    """What a restore to a point in time would do, and what would stop it: nothing was changed."""

    dry_run: bool = True
    outcome: Literal["pass", "warn", "fail"] = Field(description="fail: a real restore would be refused.")
    point_in_time: datetime
    source_environment_id: str
    target_environment_id: str
    stop_needed: bool = Field(description="The target runs: Stop Application first.")
    checks: list[PreflightCheckView] = Field(
        description="permissions, point_in_time (inside the recovery window), namespace, target_state, "
        "model_version, postgres_version."
    )
    earliest: datetime | None = Field(description="The recovery window the instant was checked against.")
    latest: datetime | None
    gaps: list[GapView]
    estimated_seconds: float | None = Field(description="From the last restore drill of the environment.")
    estimate_basis: str
    warnings: list[str]

    @classmethod
    def of(cls, plan: PointInTimePlan) -> PointInTimePlanView:
        return cls(
            outcome=plan.outcome.value,
            point_in_time=plan.instant,
            source_environment_id=plan.source.id,
            target_environment_id=plan.target.id if plan.target else "",
            stop_needed=plan.stop_needed,
            checks=[
                PreflightCheckView(name=check.name, status=check.status.value, reason=check.reason)
                for check in plan.checks
            ],
            earliest=plan.earliest,
            latest=plan.latest,
            gaps=_gaps(plan.gaps),
            estimated_seconds=plan.estimated_seconds,
            estimate_basis=plan.estimate_basis,
            warnings=list(plan.warnings),
        )
