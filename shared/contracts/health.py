"""Response body of the health check."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.contracts.common import ApiModel


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
