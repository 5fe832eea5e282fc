"""Sizes, durations and times as a person reads them: 3.1 MiB, 1 min 20 s, Oct 22 04:00 (local time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def size(value: int | None) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return str(value)


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days"


def parse(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def stamp(value: str | None, now: datetime | None = None) -> str:
    """For a table column, in local time, 12 characters as ``ls -l`` writes them: 'Oct 22 04:00' within
    half a year of now, else 'Oct 22  2025'."""
    if not value:
        return "-"
    moment = parse(value).astimezone()
    now = now or datetime.now(UTC)
    if abs(moment - now) < timedelta(days=182):
        return moment.strftime("%b %d %H:%M")
    return moment.strftime("%b %d  %Y")


def relative(moment: datetime, now: datetime) -> str:
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 60:
        return "now"
    return f"in {duration(seconds)}" if seconds > 0 else f"{duration(-seconds)} ago"


def moment(value: str | None, now: datetime | None = None) -> str:
    """For a detail view: local time with its zone, UTC beside it when they differ, and how long ago (or
    until): '2026-10-22 04:00 CEST (02:00 UTC), 3 h 10 min ago'."""
    if not value:
        return "-"
    at = parse(value)
    local = at.astimezone()
    text = local.strftime("%Y-%m-%d %H:%M %Z")
    if local.utcoffset() != timedelta(0):
        utc = at.astimezone(UTC)
        text += f" ({utc:%H:%M} UTC)" if utc.date() == local.date() else f" ({utc:%Y-%m-%d %H:%M} UTC)"
    return f"{text}, {relative(at, now or datetime.now(UTC))}"


def when(value: str | None) -> str:
    """A time in one line of prose: local time with its zone."""
    if not value:
        return "-"
    return parse(value).astimezone().strftime("%Y-%m-%d %H:%M %Z")
