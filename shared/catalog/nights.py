"""The schedules table, as the nights it holds: per environment, one row per night a scheduled backup was due.

The row is the idempotency key the nightly, weekly and monthly timers meet on: whichever comes
first claims the night with a backup id; the others only raise its tier to the longest-kept."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime

from shared.adapters.tables import Row, RowChanged, RowExists, RowTable, iterate
from shared.catalog.codec import from_iso, to_iso
from shared.domain.backups import Tier
from shared.domain.schedules import ScheduledNight
from shared.errors import StaleRecord


def _row_key(night: date) -> str:
    """Newest night first: Table Storage sorts row keys ascending."""
    return f"{99999999 - int(night.strftime('%Y%m%d')):08d}"


def _to_row(record: ScheduledNight) -> Row:
    return Row(
        record.environment_id,
        _row_key(record.night),
        {
            "Night": record.night.isoformat(),
            "RecordedOn": to_iso(record.recorded_on),
            "SnapshotId": record.backup_id,
            "Tiers": ",".join(tier.value for tier in record.tiers) or None,
        },
        record.etag,
    )


def _from_row(row: Row) -> ScheduledNight:
    return ScheduledNight(
        environment_id=row.partition_key,
        night=date.fromisoformat(row["Night"]),
        recorded_on=from_iso(row["RecordedOn"]),  # type: ignore[arg-type]
        backup_id=row.get("SnapshotId"),
        tiers=tuple(Tier(value) for value in (row.get("Tiers") or "").split(",") if value),
        etag=row.etag,
    )


class NightCatalog:
    def __init__(self, table: RowTable) -> None:
        self._table = table

    def night(self, environment_id: str, night: date, now: datetime) -> ScheduledNight:
        """The night's row, created (unclaimed) if no timer has come for it yet."""
        row = self._table.get(environment_id, _row_key(night))
        if row is not None:
            return _from_row(row)
        try:
            stored = self._table.insert(_to_row(ScheduledNight(environment_id, night, now)))
        except RowExists:
            row = self._table.get(environment_id, _row_key(night))
            assert row is not None
            return _from_row(row)
        return _from_row(stored)

    def save(self, record: ScheduledNight) -> ScheduledNight:
        try:
            stored = self._table.replace(_to_row(record), record.etag)
        except RowChanged as error:
            raise StaleRecord("The night's schedule record changed concurrently.") from error
        return replace(record, etag=stored.etag)

    def latest(self, environment_id: str) -> ScheduledNight | None:
        for row in iterate(self._table, environment_id):
            record = _from_row(row)
            if record.backup_id:
                return record
        return None

    def of_environment(self, environment_id: str) -> Iterator[ScheduledNight]:
        """Newest night first."""
        return (_from_row(row) for row in iterate(self._table, environment_id))

    def forget(self, record: ScheduledNight) -> None:
        self._table.delete(record.environment_id, _row_key(record.night))
