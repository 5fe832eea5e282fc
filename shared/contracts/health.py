"""Response body of the health check."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.contracts.common import ApiModel
from shared.domain.health import HealthReport


class CheckResult(ApiModel):
    name: str
    status: Literal["ok", "failed"]
    detail: str = ""


class BackupFreshness(ApiModel):
    environment: str
    status: Literal["ok", "stale", "new"] = Field(
        description="stale: no successful backup in the freshness window (26 hours by default); new: "
        "registered within it and not backed up yet."
    )
    last_successful_backup: datetime | None


class HealthView(ApiModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    storage: list[CheckResult]
    databases: list[CheckResult]
    backups: list[BackupFreshness] = Field(default_factory=list)

    @classmethod
    def of(cls, report: HealthReport) -> HealthView:
        return cls(
            status=report.status,
            storage=[CheckResult(name=c.name, status=c.status, detail=c.detail) for c in report.storage],
            databases=[CheckResult(name=c.name, status=c.status, detail=c.detail) for c in report.databases],
            backups=[
                BackupFreshness(
                    environment=f.environment, status=f.status, last_successful_backup=f.last_successful_backup
                )
                for f in report.backups
            ],
        )
