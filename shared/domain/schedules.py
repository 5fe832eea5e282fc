"""A night a scheduled backup was due: the idempotency key the nightly, weekly and monthly timers meet on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from shared.domain.backups import Backup, Tier


@dataclass(frozen=True)
class ScheduledNight:
    environment_id: str
    night: date
    recorded_on: datetime
    backup_id: str | None = None
    tiers: tuple[Tier, ...] = ()
    etag: str = ""


@dataclass(frozen=True)
class ScheduleState:
    last: ScheduledNight | None
    last_backup: Backup | None
    next_run: datetime | None
