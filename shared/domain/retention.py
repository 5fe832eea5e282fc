"""How long each tier of backup is kept. Periods are calendar periods: a weekly backup made on
22 October at 02:00 expires on 22 January at 02:00; month ends clamp (30 November + 3 months is
28 or 29 February)."""

from __future__ import annotations

from datetime import datetime

from dateutil.relativedelta import relativedelta

from shared.domain.snapshots import Tier

RETENTION: dict[Tier, relativedelta] = {
    Tier.NIGHTLY: relativedelta(days=14),
    Tier.WEEKLY: relativedelta(months=3),
    Tier.MONTHLY: relativedelta(years=1),
    Tier.MANUAL: relativedelta(days=14),
    Tier.UPLOADED: relativedelta(days=14),
    Tier.PRE_RESTORE: relativedelta(days=14),
}


def expiry(tier: Tier, created_on: datetime) -> datetime:
    return created_on + RETENTION[tier]
