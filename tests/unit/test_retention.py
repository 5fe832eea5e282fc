"""Retention and the schedule rules, walked through a simulated year of nights."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from shared.domain.backups import Actor, Backup, BackupStatus, Tier, new_backup_id
from shared.domain.retention import due, expiry, is_first_sunday, longest, prunable, tier_of_night


def at(day: date, hour: int = 2) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


@pytest.mark.parametrize(
    ("tier", "created", "expires"),
    [
        # the seed's example: a weekly backup of 22 October expires on 22 January
        (Tier.WEEKLY, datetime(2023, 10, 22, 2, tzinfo=UTC), datetime(2024, 1, 22, 2, tzinfo=UTC)),
        # end-of-month dates clamp: 30 November + 3 months is 28 or 29 February
        (Tier.WEEKLY, datetime(2024, 11, 30, 2, tzinfo=UTC), datetime(2025, 2, 28, 2, tzinfo=UTC)),
        (Tier.WEEKLY, datetime(2023, 11, 30, 2, tzinfo=UTC), datetime(2024, 2, 29, 2, tzinfo=UTC)),
        (Tier.MONTHLY, datetime(2024, 2, 29, 2, tzinfo=UTC), datetime(2025, 2, 28, 2, tzinfo=UTC)),
        (Tier.MONTHLY, datetime(2026, 11, 1, 2, tzinfo=UTC), datetime(2027, 11, 1, 2, tzinfo=UTC)),
        (Tier.NIGHTLY, datetime(2026, 12, 25, 2, tzinfo=UTC), datetime(2027, 1, 8, 2, tzinfo=UTC)),
        (Tier.MANUAL, datetime(2026, 2, 20, 13, 30, tzinfo=UTC), datetime(2026, 3, 6, 13, 30, tzinfo=UTC)),
        (Tier.UPLOADED, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC)),
        (Tier.PRE_RESTORE, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC)),
    ],
)
def test_expiry_is_creation_plus_a_calendar_period(tier, created, expires):
    assert expiry(tier, created) == expires


@pytest.mark.parametrize(
    ("night", "tier"),
    [
        (date(2026, 11, 1), Tier.MONTHLY),  # the first Sunday of November 2026
        (date(2026, 11, 8), Tier.WEEKLY),
        (date(2026, 11, 9), Tier.NIGHTLY),
        (date(2026, 11, 7), Tier.NIGHTLY),  # a Saturday within the first seven days
        (date(2026, 2, 1), Tier.MONTHLY),  # Sunday the 1st
        (date(2026, 3, 1), Tier.MONTHLY),
        (date(2026, 3, 8), Tier.WEEKLY),  # the 8th is never a first Sunday
        (date(2026, 5, 3), Tier.MONTHLY),
        (date(2026, 5, 10), Tier.WEEKLY),
    ],
)
def test_the_tier_of_a_night(night, tier):
    assert tier_of_night(night) is tier


def test_first_sundays_of_a_year_are_twelve_and_each_in_the_first_week():
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    firsts = [day for day in days if is_first_sunday(day)]
    assert len(firsts) == 12
    assert [day.month for day in firsts] == list(range(1, 13))
    assert all(day.weekday() == 6 and day.day <= 7 for day in firsts)


def test_due_and_longest():
    sunday, first_sunday, monday = date(2026, 11, 8), date(2026, 11, 1), date(2026, 11, 9)
    assert (due(Tier.NIGHTLY, monday), due(Tier.WEEKLY, monday), due(Tier.MONTHLY, monday)) == (True, False, False)
    assert (due(Tier.WEEKLY, sunday), due(Tier.MONTHLY, sunday)) == (True, False)
    assert (due(Tier.WEEKLY, first_sunday), due(Tier.MONTHLY, first_sunday)) == (True, True)
    assert longest(Tier.NIGHTLY, Tier.MONTHLY) is Tier.MONTHLY
    assert longest(Tier.WEEKLY, Tier.NIGHTLY) is Tier.WEEKLY
    with pytest.raises(ValueError, match="not a scheduled tier"):
        due(Tier.MANUAL, monday)


def backup(tier: Tier, created: datetime, **changes) -> Backup:
    return Backup(
        id=new_backup_id(created),
        environment_id="env",
        namespace="ns",
        status=changes.pop("status", BackupStatus.FINISHED),
        tier=tier,
        created_on=created,
        expires_on=expiry(tier, created),
        created_by=Actor("scheduler", "scheduler"),
        **changes,
    )


def simulate(first_night: date, last_night: date, *, pins: dict[date, datetime] | None = None) -> dict[date, dict]:
    """Each night at 02:00 the scheduled backup; at 04:00 pruning. Returns, per night, the nights
    whose backups exist after that night's pruning, by tier."""
    alive: list[Backup] = []
    seen: dict[date, dict] = {}
    night = first_night
    while night <= last_night:
        tier = tier_of_night(night)
        alive.append(backup(tier, at(night), keep_until=(pins or {}).get(night)))
        now = at(night, 4)
        alive = [s for s in alive if not prunable(s, now)]
        by_tier: dict[Tier, list[date]] = {}
        for s in alive:
            by_tier.setdefault(s.tier, []).append(s.created_on.date())
        seen[night] = by_tier
        night += timedelta(days=1)
    return seen


def test_a_simulated_year_of_nights():
    seen = simulate(date(2026, 1, 1), date(2026, 12, 31))

    # Mid-year: nightly backups of the last 14 nights (Sundays are weekly or monthly instead),
    # weekly backups of the last three months of Sundays, monthly ones since January.
    july = seen[date(2026, 7, 15)]
    assert july[Tier.NIGHTLY] == [
        d for d in (date(2026, 7, 15) - timedelta(days=n) for n in range(13, -1, -1)) if d.weekday() != 6
    ]
    assert july[Tier.WEEKLY] == [
        date(2026, 4, 19), date(2026, 4, 26), date(2026, 5, 10), date(2026, 5, 17), date(2026, 5, 24),
        date(2026, 5, 31), date(2026, 6, 14), date(2026, 6, 21), date(2026, 6, 28), date(2026, 7, 12),
    ]  # fmt: skip
    assert july[Tier.MONTHLY] == [
        date(2026, 1, 4), date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 5), date(2026, 5, 3),
        date(2026, 6, 7), date(2026, 7, 5),
    ]  # fmt: skip

    # The seed's example through the loop: the weekly of Sunday 22 February lives until 22 May.
    assert date(2026, 2, 22) in seen[date(2026, 5, 21)][Tier.WEEKLY]
    assert date(2026, 2, 22) not in seen[date(2026, 5, 22)][Tier.WEEKLY]

    # At the end of the year: twelve monthly backups, none older than a year.
    assert len(seen[date(2026, 12, 31)][Tier.MONTHLY]) == 12
    assert all(len(tiers.get(Tier.NIGHTLY, [])) <= 14 for tiers in seen.values())


def test_a_month_whose_first_sunday_came_before_the_first_nightly_has_no_monthly():
    seen = simulate(date(2026, 11, 3), date(2026, 12, 31))  # registered after Sunday 1 November
    assert seen[date(2026, 11, 30)].get(Tier.MONTHLY) is None
    assert seen[date(2026, 11, 30)][Tier.WEEKLY] == [
        date(2026, 11, 8),
        date(2026, 11, 15),
        date(2026, 11, 22),
        date(2026, 11, 29),
    ]
    assert seen[date(2026, 12, 31)][Tier.MONTHLY] == [date(2026, 12, 6)]


def test_a_pinned_backup_survives_its_expiry():
    pins = {date(2026, 3, 10): datetime(2026, 9, 1, tzinfo=UTC)}
    seen = simulate(date(2026, 3, 1), date(2026, 9, 2), pins=pins)
    assert date(2026, 3, 10) in seen[date(2026, 8, 31)][Tier.NIGHTLY]
    assert date(2026, 3, 10) not in seen[date(2026, 9, 1)][Tier.NIGHTLY]


def test_what_pruning_may_not_remove():
    old = datetime(2026, 1, 1, 2, tzinfo=UTC)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert prunable(backup(Tier.NIGHTLY, old), now)
    assert prunable(backup(Tier.NIGHTLY, old, status=BackupStatus.FAILED), now)
    assert not prunable(backup(Tier.NIGHTLY, old, status=BackupStatus.PROCESSING), now)
    assert not prunable(backup(Tier.NIGHTLY, old, in_use_by=("restore x",)), now)
    assert not prunable(backup(Tier.NIGHTLY, old, keep_until=now + timedelta(days=1)), now)
    assert not prunable(backup(Tier.MONTHLY, old), now)
    assert prunable(backup(Tier.NIGHTLY, now - timedelta(days=14)), now)  # exactly its period: expired
