"""NCRONTAB and TimeSpan timer schedules."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from devhost.settings import resolve_references
from shared.schedules.ncrontab import CronSchedule, IntervalSchedule, next_occurrence, parse_schedule
from shared.schedules.timespan import parse_timespan


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def occurrences(expression: str, start: str, count: int) -> list[str]:
    found, moment = [], at(start)
    for _ in range(count):
        moment = next_occurrence(expression, moment)
        found.append(moment.isoformat())
    return found


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # every second / minute / hour; the result is strictly after the base time
        ("* * * * * *", "2024-05-01T10:00:00", "2024-05-01T10:00:01"),
        ("0 * * * * *", "2024-05-01T10:00:00", "2024-05-01T10:01:00"),
        ("0 0 * * * *", "2024-05-01T10:00:00", "2024-05-01T11:00:00"),
        ("0 0 * * * *", "2024-05-01T10:59:59", "2024-05-01T11:00:00"),
        # steps
        ("0 */5 * * * *", "2024-05-01T10:03:00", "2024-05-01T10:05:00"),
        ("0 */5 * * * *", "2024-05-01T10:05:00", "2024-05-01T10:10:00"),
        ("*/15 * * * * *", "2024-05-01T10:00:46", "2024-05-01T10:01:00"),
        ("0 1-30/10 * * * *", "2024-05-01T10:12:00", "2024-05-01T10:21:00"),
        ("0 1-30/10 * * * *", "2024-05-01T10:21:00", "2024-05-01T11:01:00"),
        ("5/20 * * * * *", "2024-05-01T10:00:26", "2024-05-01T10:00:45"),
        # lists and ranges
        ("0 0 9,12,18 * * *", "2024-05-01T12:00:00", "2024-05-01T18:00:00"),
        ("0 30 9-17 * * *", "2024-05-01T17:30:00", "2024-05-02T09:30:00"),
        ("0 0 17-9 * * *", "2024-05-01T17:00:00", "2024-05-02T09:00:00"),  # reversed range = 9-17 (NCrontab)
        # month and year ends
        ("0 0 0 * * *", "2024-01-31T12:00:00", "2024-02-01T00:00:00"),
        ("0 0 0 * * *", "2024-12-31T23:59:59", "2025-01-01T00:00:00"),
        ("0 0 0 1 * *", "2024-12-15T00:00:00", "2025-01-01T00:00:00"),
        ("59 59 23 31 12 *", "2024-12-31T23:59:59", "2025-12-31T23:59:59"),
        ("0 0 0 31 * *", "2024-04-01T00:00:00", "2024-05-31T00:00:00"),  # April has no 31st
        ("0 0 12 29 2 *", "2023-03-01T00:00:00", "2024-02-29T12:00:00"),  # leap day
        ("0 0 12 29 2 *", "2024-02-29T12:00:00", "2028-02-29T12:00:00"),
        # days of week: 0 = Sunday; 2024-05-01 is a Wednesday
        ("0 0 9 * * 1-5", "2024-05-03T10:00:00", "2024-05-06T09:00:00"),
        ("0 0 9 * * 0", "2024-05-01T00:00:00", "2024-05-05T09:00:00"),
        ("0 0 9 * * 6", "2024-05-01T00:00:00", "2024-05-04T09:00:00"),
        ("0 0 9 * * MON-FRI", "2024-05-03T10:00:00", "2024-05-06T09:00:00"),
        ("0 0 9 * * sun,Sat", "2024-05-01T00:00:00", "2024-05-04T09:00:00"),
        ("0 0 9 * * tuesday", "2024-05-01T00:00:00", "2024-05-07T09:00:00"),
        ("0 0 9 * * */2", "2024-05-01T10:00:00", "2024-05-02T09:00:00"),  # Sun, Tue, Thu, Sat
        # month names
        ("0 0 0 1 JAN,jul *", "2024-02-01T00:00:00", "2024-07-01T00:00:00"),
        ("0 0 0 1 Mar-May *", "2024-05-02T00:00:00", "2025-03-01T00:00:00"),
        ("0 0 0 1 december *", "2024-01-01T00:00:00", "2024-12-01T00:00:00"),
        # day and day-of-week both restricted: NCrontab needs both to match (Friday the 13th)
        ("0 0 0 13 * FRI", "2024-01-01T00:00:00", "2024-09-13T00:00:00"),
        ("0 0 0 13 * 5", "2024-09-13T00:00:00", "2024-12-13T00:00:00"),
        ("0 0 0 1 * 1", "2024-01-01T00:00:00", "2024-04-01T00:00:00"),
        # fractions of a second are dropped before the search (NCrontab works on whole seconds)
        ("* * * * * *", "2024-05-01T10:00:00.750000", "2024-05-01T10:00:01"),
    ],
)
def test_next_occurrence(expression: str, after: str, expected: str) -> None:
    assert next_occurrence(expression, at(after)) == at(expected)


def test_a_run_of_occurrences_crosses_the_year() -> None:
    assert occurrences("0 0 0 1 */4 *", "2024-06-15", 4) == [
        "2024-09-01T00:00:00",
        "2025-01-01T00:00:00",
        "2025-05-01T00:00:00",
        "2025-09-01T00:00:00",
    ]


def test_every_weekday_morning_for_a_week() -> None:
    assert occurrences("0 30 8 * * 1-5", "2024-05-03T09:00:00", 3) == [
        "2024-05-06T08:30:00",
        "2024-05-07T08:30:00",
        "2024-05-08T08:30:00",
    ]


def test_aware_datetimes_are_taken_in_utc_and_returned_in_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    result = next_occurrence("0 0 9 * * *", dt.datetime(2024, 5, 1, 10, 30, tzinfo=paris))  # 08:30 UTC
    assert result == dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
    assert result.tzinfo == dt.UTC


def test_naive_in_naive_out() -> None:
    assert next_occurrence("0 0 9 * * *", at("2024-05-01T10:00:00")).tzinfo is None


def test_setting_references_are_resolved_from_the_environment() -> None:
    environ = {"BackupSchedule": "0 0 3 * * *", "MINUTE": "15"}
    resolved = resolve_references("%BackupSchedule%", environ, what="schedule")
    assert next_occurrence(resolved, at("2024-05-01T10:00:00")) == at("2024-05-02T03:00:00")
    resolved = resolve_references("0 %MINUTE% * * * *", environ, what="schedule")
    assert next_occurrence(resolved, at("2024-05-01T10:00:00")) == at("2024-05-01T10:15:00")


def test_a_missing_setting_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'NoSuchSetting'"):
        resolve_references("%NoSuchSetting%", {}, what="schedule")


def test_setting_reference_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVHOST_TEST_SCHEDULE", "00:00:30")
    resolved = resolve_references("%DEVHOST_TEST_SCHEDULE%", what="schedule")
    assert next_occurrence(resolved, at("2024-05-01T10:00:00")) == at("2024-05-01T10:00:30")


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("00:05:00", "2024-05-01T10:00:00", "2024-05-01T10:05:00"),
        ("01:00:00", "2024-12-31T23:30:00", "2025-01-01T00:30:00"),
        ("1.00:00:00", "2024-02-28T06:00:00", "2024-02-29T06:00:00"),
        ("00:00:00.5", "2024-05-01T10:00:00", "2024-05-01T10:00:00.500000"),
    ],
)
def test_timespan_schedules_fire_every_interval(expression: str, after: str, expected: str) -> None:
    schedule = parse_schedule(expression)
    assert isinstance(schedule, IntervalSchedule)
    assert next_occurrence(expression, at(after)) == at(expected)


def test_six_field_expressions_parse_to_cron_schedules() -> None:
    schedule = parse_schedule("0 */5 * * * *")
    assert isinstance(schedule, CronSchedule)
    assert schedule.minutes == tuple(range(0, 60, 5))
    assert schedule.seconds == (0,)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "non-empty"),
        ("* * * * *", "six NCRONTAB fields"),  # five fields: Functions needs the seconds field
        ("* * * * * * *", "got 7 fields"),
        ("60 * * * * *", "second value 60 is out of range 0-59"),
        ("* 60 * * * *", "minute value 60"),
        ("* * 24 * * *", "hour value 24"),
        ("* * * 0 * *", "day value 0"),
        ("* * * 32 * *", "day value 32"),
        ("* * * * 13 *", "month value 13"),
        ("* * * * * 7", "day-of-week value 7 is out of range 0-6"),
        ("* * * * Foo *", "'Foo' is not a known month name"),
        ("* * * * * Funday", "not a known day-of-week name"),
        ("x * * * * *", "'x' is not a number between 0 and 59"),
        ("*/0 * * * * *", "step '0' must be a positive integer"),
        ("*/x * * * * *", "step 'x'"),
        ("/5 * * * * *", "a step needs a start"),
        ("1,,2 * * * * *", "empty list element"),
        ("1- * * * * *", "'' is not a number"),
        ("0 0 0 L * *", "'L' is not a number between 1 and 31"),
        ("0 0 0 30 2 *", "never fires"),
        ("0 0 0 31 4,6,9,11 *", "never fires"),
        ("25:00:00", "hours must be 0-23"),
        ("00:00:00", "positive interval"),
        ("every 5 minutes", "not a valid timer schedule"),
    ],
)
def test_invalid_schedules_raise_value_error_with_a_message(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_schedule(expression)


def test_parse_timespan() -> None:
    assert parse_timespan("00:00:01") == 1
    assert parse_timespan("01:02:03") == 3723
    assert parse_timespan("2.00:00:00") == 172800
    assert parse_timespan("00:01") == 60
    assert parse_timespan("00:00:01.25") == 1.25
    assert parse_timespan("-00:00:05") == -5
    for bad in ("5", "1:2:3:4", "00:60:00", "abc", ""):
        with pytest.raises(ValueError, match="duration"):
            parse_timespan(bad)
