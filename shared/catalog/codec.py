"""How records become rows: a ``Codec`` per kind of record, and helpers to keep rows readable (a few
queryable columns plus one JSON body)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from shared.adapters.tables import Row

_MAX_MICROS = 10**16 - 1  # beyond the year 2286

T = TypeVar("T")


@dataclass(frozen=True)
class Codec(Generic[T]):
    """How a record is written to a row (its ETag included) and read back, and how messages name it
    ("Backup 0123…")."""

    to_row: Callable[[T], Row]
    from_row: Callable[[Row], T]
    name: Callable[[T], str]


def to_iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def loads(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def newest_first_key(moment: datetime | None = None) -> str:
    """A row key that sorts newest first (Table Storage sorts keys ascending), to the microsecond, unique
    per call."""
    micros = round((moment.timestamp() if moment else time.time()) * 1_000_000)
    return f"{_MAX_MICROS - micros:016d}-{uuid.uuid4().hex[:12]}"
