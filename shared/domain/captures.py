"""File-document captures: when an environment's database first and last referred to each file document, and
the content object that holds it, for restores to a point in time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class FileCapture:
    """One file document of one environment, captured: its content is ``object`` in the namespace's content
    store. ``first_referred`` is the capture run that first found the database referring to it; while the
    database still does, ``gone_on`` and ``last_referred`` are None (the environment's latest run saw it);
    then ``gone_on`` is the first run that did not find it and ``last_referred`` the last one that did."""

    environment_id: str
    uuid: str
    namespace: str
    object: str
    size: int
    md5: str
    first_referred: datetime
    source_etag: str | None = None
    last_referred: datetime | None = None
    gone_on: datetime | None = None
    etag: str = ""

    def referred_at(self, instant: datetime, slack: timedelta) -> bool:
        """Whether it was captured by ``instant``: a capture runs at most ``slack`` after a file document
        appears, so one first found up to ``slack`` after the instant may have been there at it."""
        return self.first_referred <= instant + slack

    def kept_until(self, window: timedelta, uncaptured_since: datetime | None = None) -> datetime | None:
        """Until when an instant of the window may refer to it: the window after it went, or after
        ``uncaptured_since`` (when its environment's captures stopped); None while the database refers to it."""
        gone = self.gone_on or uncaptured_since
        return gone + window if gone is not None else None


@dataclass(frozen=True)
class CaptureRun:
    """An environment's latest capture run: when it ran and what it found. Every capture without ``gone_on``
    was still referred to then."""

    environment_id: str
    ran_on: datetime
    referred: int = 0  # file documents the database referred to
    new: int = 0
    gone: int = 0
    missing: int = 0
    etag: str = ""
