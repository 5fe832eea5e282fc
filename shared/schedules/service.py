"""Scheduled backups: the timers fan out one message per eligible environment; each message makes
(or joins) that environment's one scheduled backup of the night."""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from shared.adapters.queues import WorkQueue
from shared.backups.service import BackupService
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.nights import NightCatalog
from shared.clock import Clock
from shared.domain import retention
from shared.domain.access import SCHEDULER
from shared.domain.backups import Backup, Tier, new_backup_id
from shared.domain.environments import BACKUP_ELIGIBLE_STATES
from shared.domain.schedules import ScheduleState
from shared.errors import AlreadyExists, Conflict, StaleRecord
from shared.schedules.ncrontab import next_occurrence

logger = logging.getLogger("appbackups.schedules")


@dataclass(frozen=True)
class FanOut:
    tier: Tier
    night: date
    queued: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (environment, why)


def spread_offset(environment_id: str, spread: timedelta) -> timedelta:
    """Where in the night's spread the environment's scheduled backup starts: from its id, so the same every
    night, and evenly over the window across many environments."""
    seconds = int(spread.total_seconds())
    if seconds <= 0:
        return timedelta(0)
    digest = int.from_bytes(hashlib.sha256(environment_id.encode()).digest()[:8], "big")
    return timedelta(seconds=digest % seconds)


def scheduled_message(environment_id: str, tier: Tier, night: date) -> dict[str, str]:
    return {"kind": "scheduled", "environmentId": environment_id, "tier": tier.value, "night": night.isoformat()}


class SchedulerService:
    def __init__(
        self,
        environments: EnvironmentCatalog,
        nights: NightCatalog,
        backup_catalog: BackupCatalog,
        backups: BackupService,
        queue: WorkQueue,
        clock: Clock,
        nightly_schedule: str,
        *,
        spread: timedelta = timedelta(0),
    ) -> None:
        self._spread = spread
        self._environments = environments
        self._nights = nights
        self._backup_catalog = backup_catalog
        self._backups = backups
        self._queue = queue
        self._clock = clock
        self._nightly_schedule = nightly_schedule

    def fan_out(self, tier: Tier, occurrence: datetime, *, spread: bool = True) -> FanOut:
        """One message per eligible environment, for the night of ``occurrence`` (the scheduled
        time the timer fired for, even when it fires late), each delayed to its offset in the night's
        spread — unless ``spread`` is False (a timer run by hand: its backups start at once)."""
        window = self._spread if spread else timedelta(0)
        night = occurrence.date()
        if not retention.due(tier, night):
            logger.info("no %s backups on %s (not due that night)", tier.value, night)
            return FanOut(tier, night)
        queued, skipped = [], []
        for environment in self._environments.all():
            if environment.state not in BACKUP_ELIGIBLE_STATES:
                reason = f"{environment.state.value}"
                logger.warning(
                    "skipping the %s backup of %s on %s: the environment is %s",
                    tier.value,
                    environment.id,
                    night,
                    reason,
                )
                skipped.append((environment.id, reason))
                continue
            self._nights.night(environment.id, night, self._clock())  # due: the nights view shows it waiting
            start = occurrence + spread_offset(environment.id, window)
            delay = min(max(0, math.ceil((start - self._clock()).total_seconds())), int(window.total_seconds()))
            self._queue.send(scheduled_message(environment.id, tier, night), delay_seconds=delay)
            queued.append(environment.id)
        logger.info("%s backups of %s: %d queued, %d skipped", tier.value, night, len(queued), len(skipped))
        return FanOut(tier, night, tuple(queued), tuple(skipped))

    def run(self, environment_id: str, tier: Tier, night: date) -> Backup | None:
        """Make the night's scheduled backup, or — when another timer made it already — give it the
        longer retention of the two. Safe to run any number of times, in any order."""
        for _ in range(10):
            try:
                return self._run_once(environment_id, tier, night)
            except StaleRecord:
                continue  # another timer moved the same night on; look again
        raise Conflict(f"The {tier.value} backup of {environment_id} for {night} kept colliding; it is retried.")

    def _run_once(self, environment_id: str, tier: Tier, night: date) -> Backup | None:
        environment = self._environments.find(environment_id)
        if environment is None:
            return None
        record = self._nights.night(environment_id, night, self._clock())
        if record.backup_id is None:
            if environment.state not in BACKUP_ELIGIBLE_STATES:
                logger.warning(
                    "skipping the %s backup of %s on %s: the environment is %s",
                    tier.value,
                    environment_id,
                    night,
                    environment.state.value,
                )
                return None
            record = self._nights.save(replace(record, backup_id=new_backup_id(self._clock()), tiers=(tier,)))
        backup = self._backup_catalog.find(environment_id, str(record.backup_id))
        if backup is None:
            first_tier = record.tiers[0] if record.tiers else tier
            try:
                backup = self._backups.request(
                    environment_id,
                    SCHEDULER,
                    tier=first_tier,
                    backup_id=record.backup_id,
                    comment=f"Scheduled backup of the night of {night.isoformat()}",
                )
            except AlreadyExists:
                backup = self._backup_catalog.get(environment_id, str(record.backup_id))  # another timer made it
        if tier not in record.tiers:
            self._nights.save(replace(record, tiers=(*record.tiers, tier)))
        if backup.tier in retention.SCHEDULED_TIERS and retention.longest(backup.tier, tier) is not backup.tier:
            backup = self._backup_catalog.save(
                replace(backup, tier=tier, expires_on=retention.expiry(tier, backup.created_on))
            )
            logger.info(
                "backup %s of %s is now %s (kept until %s)",
                backup.id,
                environment_id,
                tier.value,
                backup.expires_on,
            )
        return backup

    def state(self, environment_id: str) -> ScheduleState:
        last = self._nights.latest(environment_id)
        backup = self._backup_catalog.find(environment_id, last.backup_id) if last and last.backup_id else None
        try:
            next_run = next_occurrence(self._nightly_schedule, self._clock())
        except ValueError:
            next_run = None
        return ScheduleState(last, backup, next_run)
