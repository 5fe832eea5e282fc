"""Parse .NET ``TimeSpan`` strings as host.json and timer schedules write them."""

from __future__ import annotations

import re

_TIMESPAN = re.compile(
    r"""
    ^\s*(?P<sign>-)?
    (?:(?P<days>\d+)\.)?
    (?P<hours>\d{1,2}):(?P<minutes>\d{1,2})
    (?::(?P<seconds>\d{1,2})(?:\.(?P<fraction>\d{1,7}))?)?
    \s*$
    """,
    re.VERBOSE,
)


def parse_timespan(text: str) -> float:
    """Return the number of seconds in a ``[-][d.]hh:mm[:ss[.fffffff]]`` string.

    This is the ``c`` (constant) format of .NET's ``TimeSpan.Parse``, which the Functions host uses for
    host.json durations and TimeSpan timer schedules. A bare number (which .NET reads as days) is refused
    because it is almost always a mistake for milliseconds or seconds.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string like 'hh:mm:ss', got {text!r}")
    match = _TIMESPAN.match(text)
    if match is None:
        raise ValueError(f"'{text}' is not a duration in the form [d.]hh:mm:ss")
    hours, minutes = int(match["hours"]), int(match["minutes"])
    seconds = int(match["seconds"] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"'{text}' is not a valid duration: hours must be 0-23, minutes and seconds 0-59")
    total = int(match["days"] or 0) * 86400 + hours * 3600 + minutes * 60 + seconds
    fraction = float("0." + match["fraction"]) if match["fraction"] else 0.0
    value = total + fraction
    return -value if match["sign"] else value


def looks_like_timespan(text: str) -> bool:
    """True when ``text`` has the shape of a TimeSpan (it may still be out of range)."""
    return _TIMESPAN.match(text) is not None
