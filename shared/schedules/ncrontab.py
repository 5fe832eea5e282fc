"""Timer schedules as Azure Functions reads them: six-field NCRONTAB, as NCrontab parses it, and TimeSpan
intervals; UTC. Why not croniter, and NCrontab's rules: docs/decisions/0004."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from shared.schedules.timespan import looks_like_timespan, parse_timespan

_MONTH_NAMES = tuple(calendar.month_name[1:])  # January..December
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


_FIELDS = (
    _FieldSpec("second", 0, 59),
    _FieldSpec("minute", 0, 59),
    _FieldSpec("hour", 0, 23),
    _FieldSpec("day", 1, 31),
    _FieldSpec("month", 1, 12, _MONTH_NAMES),
    _FieldSpec("day-of-week", 0, 6, _DAY_NAMES),  # Sunday is 0; NCrontab refuses 7
)

# Beyond this, a schedule is taken never to fire (Feb 29 on a given weekday recurs within 40 years).
_SEARCH_YEARS = 400


class Schedule(Protocol):
    expression: str

    def next_after(self, after: dt.datetime) -> dt.datetime:
        """The first occurrence strictly after ``after``."""
        ...


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    def next_after(self, after: dt.datetime) -> dt.datetime:
        start, restore = _to_naive_utc(after)
        start = start.replace(microsecond=0) + dt.timedelta(seconds=1)  # whole seconds, strictly after
        date = start.date()
        limit = dt.date(min(date.year + _SEARCH_YEARS, dt.MAXYEAR), 1, 1)
        while date < limit:
            if date.month not in self.months:
                date = _first_of_next_month(date)
                continue
            # Day of month AND day of week, as NCrontab (0 0 0 13 * FRI: Friday the 13th); Vixie cron ORs them.
            if date.day in self.days and (date.weekday() + 1) % 7 in self.days_of_week:
                earliest = start.time() if date == start.date() else dt.time(0, 0, 0)
                found = self._time_on_or_after(earliest)
                if found is not None:
                    return restore(dt.datetime.combine(date, found))
            date += dt.timedelta(days=1)
        raise ValueError(f"schedule '{self.expression}' has no occurrence after {after.isoformat()}")

    def _time_on_or_after(self, earliest: dt.time) -> dt.time | None:
        for hour in self.hours:
            if hour < earliest.hour:
                continue
            same_hour = hour == earliest.hour
            for minute in self.minutes:
                if same_hour and minute < earliest.minute:
                    continue
                same_minute = same_hour and minute == earliest.minute
                for second in self.seconds:
                    if same_minute and second < earliest.second:
                        continue
                    return dt.time(hour, minute, second)
        return None


@dataclass(frozen=True)
class IntervalSchedule:
    expression: str
    interval: dt.timedelta

    def next_after(self, after: dt.datetime) -> dt.datetime:
        return after + self.interval


def parse_schedule(expression: str) -> CronSchedule | IntervalSchedule:
    """Parse a timer trigger schedule (with ``%Name%`` references already resolved). Raises ``ValueError``."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("a timer schedule must be a non-empty string")
    resolved = expression.strip()
    tokens = resolved.split()
    if len(tokens) == len(_FIELDS):
        return _parse_cron(resolved, tokens)
    if len(tokens) == 1 and looks_like_timespan(resolved):
        seconds = parse_timespan(resolved)
        if seconds <= 0:
            raise ValueError(f"TimeSpan schedule '{resolved}' must be a positive interval")
        return IntervalSchedule(resolved, dt.timedelta(seconds=seconds))
    raise ValueError(
        f"'{resolved}' is not a valid timer schedule: expected six NCRONTAB fields "
        "'{second} {minute} {hour} {day} {month} {day-of-week}' or a TimeSpan 'hh:mm:ss'"
        f" (got {len(tokens)} field{'s' if len(tokens) != 1 else ''})"
    )


def next_occurrence(expression: str, after: dt.datetime) -> dt.datetime:
    """The first time strictly after ``after`` at which ``expression`` fires.

    ``after`` is UTC: a naive datetime is taken as UTC and a naive result returned; an aware one is
    converted and the result is an aware UTC datetime.
    """
    return parse_schedule(expression).next_after(after)


def _parse_cron(expression: str, tokens: list[str]) -> CronSchedule:
    values = []
    for spec, token in zip(_FIELDS, tokens, strict=True):
        try:
            values.append(_parse_field(spec, token))
        except ValueError as error:
            raise ValueError(f"'{expression}' is not a valid NCRONTAB expression: {error}") from error
    seconds, minutes, hours, days, months, days_of_week = values
    if not any(day <= _max_days(month) for month in months for day in days):
        raise ValueError(f"'{expression}' never fires: no selected month has any of the selected days")
    return CronSchedule(
        expression=expression,
        seconds=tuple(sorted(seconds)),
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=frozenset(days),
        months=frozenset(months),
        days_of_week=frozenset(days_of_week),
    )


def _parse_field(spec: _FieldSpec, token: str) -> set[int]:
    selected: set[int] = set()
    for part in token.split(","):
        selected |= _parse_part(spec, part, token)
    return selected


def _parse_part(spec: _FieldSpec, part: str, token: str) -> set[int]:
    if not part:
        raise ValueError(f"{spec.name} field '{token}' has an empty list element")
    step = 1
    base = part
    if "/" in part:
        base, _, step_text = part.partition("/")
        if not step_text.isdigit() or int(step_text) < 1:
            raise ValueError(f"{spec.name} field '{token}': step '{step_text}' must be a positive integer")
        step = int(step_text)
        if not base:
            raise ValueError(f"{spec.name} field '{token}': a step needs a start ('*/{step}' or 'a-b/{step}')")
    if base == "*":
        low, high = spec.low, spec.high
    elif "-" in base:
        first, _, last = base.partition("-")
        # NCrontab reads a reversed range 5-1 as 1-5 (croniter wraps it)
        low, high = sorted((_value(spec, first, token), _value(spec, last, token)))
    else:
        low = _value(spec, base, token)
        high = spec.high if "/" in part else low
    return set(range(low, high + 1, step))


def _value(spec: _FieldSpec, text: str, token: str) -> int:
    if text.isdigit():
        value = int(text)
        if not spec.low <= value <= spec.high:
            raise ValueError(f"{spec.name} value {value} is out of range {spec.low}-{spec.high}")
        return value
    if spec.names and text.isalpha():  # any prefix of the English name, in any case: Jan, january, TUESDAY
        for index, name in enumerate(spec.names):
            if name.lower().startswith(text.lower()):
                return spec.low + index
        raise ValueError(f"'{text}' is not a known {spec.name} name (use one of {', '.join(spec.names)})")
    allowed = f" or a name such as {spec.names[0][:3]}" if spec.names else ""
    raise ValueError(
        f"{spec.name} field '{token}': '{text}' is not a number between {spec.low} and {spec.high}{allowed}"
    )


def _max_days(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def _first_of_next_month(date: dt.date) -> dt.date:
    return dt.date(date.year + 1, 1, 1) if date.month == 12 else dt.date(date.year, date.month + 1, 1)


def _to_naive_utc(moment: dt.datetime) -> tuple[dt.datetime, _Restore]:
    if moment.tzinfo is None:
        return moment, _identity
    return moment.astimezone(dt.UTC).replace(tzinfo=None), _as_utc


class _Restore(Protocol):
    def __call__(self, moment: dt.datetime) -> dt.datetime: ...


def _identity(moment: dt.datetime) -> dt.datetime:
    return moment


def _as_utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC)
