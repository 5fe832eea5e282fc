"""The schedules table, as the nights it holds: per environment, one row per night a scheduled backup was due.

The row is the idempotency key the nightly, weekly and monthly timers meet on: whichever comes
first claims the night with a backup id; the others only raise its tier to the longest-kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

from shared.adapters.tables import Row, RowTable
from shared.catalog.codec import Codec, from_iso, to_iso
from shared.catalog.repository import KeyOrderedRepository
from shared.domain.backups import Tier
from shared.domain.schedules import ScheduledNight
from shared.errors import AlreadyExists


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


_CODEC = Codec(_to_row, _from_row, lambda record: f"The schedule record of {record.night.isoformat()}")


class NightCatalog:
    """Newest night first."""

    def __init__(self, table: RowTable) -> None:
        self._nights = KeyOrderedRepository(table, _CODEC)

    def night(self, environment_id: str, night: date, now: datetime) -> ScheduledNight:
        """The night's row, created (unclaimed) if no timer has come for it yet."""
        record = self._nights.load(environment_id, _row_key(night))
        if record is not None:
            return record
        try:
            return self._nights.insert(ScheduledNight(environment_id, night, now))
        except AlreadyExists:
            record = self._nights.load(environment_id, _row_key(night))
            assert record is not None
            return record

    def find(self, environment_id: str, night: date) -> ScheduledNight | None:
        """The night's row, if a timer came for it (nothing is created)."""
        return self._nights.load(environment_id, _row_key(night))

    def save(self, record: ScheduledNight) -> ScheduledNight:
        return self._nights.save(record)

    def latest(self, environment_id: str) -> ScheduledNight | None:
        return next((record for record in self._nights.all(environment_id) if record.backup_id), None)

    def of_environment(self, environment_id: str) -> Iterator[ScheduledNight]:
        """Newest night first."""
        return self._nights.all(environment_id)

    def forget(self, record: ScheduledNight) -> None:
        self._nights.remove(record.environment_id, _row_key(record.night))
