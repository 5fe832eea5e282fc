"""Health: whether the service reaches its storage and the environments' databases, and which
environments have gone too long without a successful backup."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class Check:
    name: str
    status: Literal["ok", "failed"]
    detail: str = ""


@dataclass(frozen=True)
class Freshness:
    environment: str
    status: Literal["ok", "stale", "new"]
    last_successful_backup: datetime | None


@dataclass(frozen=True)
class HealthReport:
    status: Literal["healthy", "degraded", "unhealthy"]
    storage: list[Check]
    databases: list[Check]
    backups: list[Freshness] = field(default_factory=list)
