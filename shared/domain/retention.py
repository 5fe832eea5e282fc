"""How long each tier of backup is kept, and which tier a night's scheduled backup is.

Periods are calendar periods: a weekly backup made on 22 October at 02:00 expires on 22 January
at 02:00; month ends clamp (30 November + 3 months is 28 or 29 February).

One scheduled backup is made per environment per night. Its tier is the longest-kept of the
tiers due that night: monthly on the month's first Sunday, weekly on other Sundays, nightly
otherwise. A month whose first Sunday came before an environment's first nightly backup has no
monthly backup for that environment."""

from __future__ import annotations

from datetime import date, datetime

from dateutil.relativedelta import relativedelta

from shared.domain.backups import Backup, BackupStatus, Tier

RETENTION: dict[Tier, relativedelta] = {
    Tier.NIGHTLY: relativedelta(days=14),
    Tier.WEEKLY: relativedelta(months=3),
    Tier.MONTHLY: relativedelta(years=1),
    Tier.MANUAL: relativedelta(days=14),
    Tier.UPLOADED: relativedelta(days=14),
    Tier.PRE_RESTORE: relativedelta(days=14),
    Tier.POINT_IN_TIME: relativedelta(days=14),
}

SCHEDULED_TIERS = (Tier.NIGHTLY, Tier.WEEKLY, Tier.MONTHLY)
_RANK = {Tier.NIGHTLY: 1, Tier.WEEKLY: 2, Tier.MONTHLY: 3}


def expiry(tier: Tier, created_on: datetime) -> datetime:
    return created_on + RETENTION[tier]


def longest(first: Tier, second: Tier) -> Tier:
    """Of two scheduled tiers due the same night, the one kept longer."""
    return first if _RANK[first] >= _RANK[second] else second


def is_sunday(night: date) -> bool:
    return night.weekday() == 6


def is_first_sunday(night: date) -> bool:
    """NCRONTAB cannot say "the first Sunday of the month"; the monthly timer fires on Sundays and
    this decides."""
    return is_sunday(night) and night.day <= 7


def due(tier: Tier, night: date) -> bool:
    """Is ``tier`` due on ``night``? Nightly always; weekly on Sundays; monthly on first Sundays."""
    if tier is Tier.NIGHTLY:
        return True
    if tier is Tier.WEEKLY:
        return is_sunday(night)
    if tier is Tier.MONTHLY:
        return is_first_sunday(night)
    raise ValueError(f"{tier.value} is not a scheduled tier")


def tier_of_night(night: date) -> Tier:
    """The tier of a night's one scheduled backup: the longest-kept tier due that night."""
    result = Tier.NIGHTLY
    for tier in SCHEDULED_TIERS:
        if due(tier, night):
            result = longest(result, tier)
    return result


def prunable(backup: Backup, now: datetime) -> bool:
    """May pruning remove it: retained until no later than now (pins count), not being made, not in use."""
    return backup.status is not BackupStatus.PROCESSING and backup.retained_until <= now and not backup.in_use_by
