"""Response body of the health check."""

from __future__ import annotations

from typing import Literal

from shared.contracts.common import ApiModel


class CheckResult(ApiModel):
    name: str
    status: Literal["ok", "failed"]
    detail: str = ""


class HealthView(ApiModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    storage: list[CheckResult]
    databases: list[CheckResult]
