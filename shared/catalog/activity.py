"""The activity log: per environment, newest entry first, in its table; recording and reading it."""

from __future__ import annotations

from datetime import datetime

from shared.adapters.tables import Row, RowTable
from shared.catalog.codec import Codec, from_iso, newest_first_key, to_iso
from shared.catalog.repository import KeyOrderedRepository
from shared.clock import Clock
from shared.domain.access import Principal
from shared.domain.activity import Action, ActivityEntry, Outcome


def _to_row(entry: ActivityEntry) -> Row:
    return Row(
        entry.environment_id,
        entry.id,
        {
            "Action": entry.action.value,
            "Outcome": entry.outcome.value,
            "OccurredOn": to_iso(entry.occurred_on),
            "ActorId": entry.actor_id,
            "ActorName": entry.actor_name,
            "Message": entry.message,
            "SnapshotId": entry.backup_id,
            "OperationId": entry.operation_id,
        },
    )


def _from_row(row: Row) -> ActivityEntry:
    return ActivityEntry(
        id=row.row_key,
        environment_id=row.partition_key,
        action=Action(row["Action"]),
        outcome=Outcome(row["Outcome"]),
        occurred_on=from_iso(row["OccurredOn"]),  # type: ignore[arg-type]
        actor_id=row["ActorId"],
        actor_name=row.get("ActorName") or row["ActorId"],
        message=row.get("Message") or "",
        backup_id=row.get("SnapshotId"),
        operation_id=row.get("OperationId"),
    )


_CODEC = Codec(_to_row, _from_row, lambda entry: f"Activity entry {entry.id}")


class ActivityCatalog:
    """Newest entry first."""

    def __init__(self, table: RowTable) -> None:
        self._entries = KeyOrderedRepository(table, _CODEC)

    def append(self, entry: ActivityEntry) -> ActivityEntry:
        """Write the entry; writing the same entry (same id) again replaces it, so a repeated step
        that logs under a checkpointed id logs once."""
        self._entries.put(entry)
        return entry

    def page(
        self, environment_id: str, *, limit: int, continuation: str | None
    ) -> tuple[list[ActivityEntry], str | None]:
        return self._entries.page(environment_id, limit=limit, continuation=continuation)


def namespace_log(namespace: str) -> str:
    """The activity partition of a namespace's own changes (grants), beside its environments'."""
    return f"namespace:{namespace}"


def new_entry_id() -> str:
    return newest_first_key()


class ActivityLog:
    def __init__(self, catalog: ActivityCatalog, clock: Clock) -> None:
        self._catalog = catalog
        self._clock = clock

    def record(
        self,
        environment_id: str,
        action: Action,
        outcome: Outcome,
        actor: Principal,
        message: str = "",
        *,
        backup_id: str | None = None,
        operation_id: str | None = None,
        entry_id: str | None = None,
        occurred_on: datetime | None = None,
    ) -> ActivityEntry:
        """Append an entry. Work that may run again after a crash passes an ``entry_id`` it has
        checkpointed (``new_entry_id``), so the entry is written once whatever happens."""
        now = occurred_on or self._clock()
        entry = ActivityEntry(
            id=entry_id or newest_first_key(now),
            environment_id=environment_id,
            action=action,
            outcome=outcome,
            occurred_on=now,
            actor_id=actor.id,
            actor_name=actor.name,
            message=message,
            backup_id=backup_id,
            operation_id=operation_id,
        )
        return self._catalog.append(entry)

    def page(
        self, environment_id: str, *, limit: int, continuation: str | None
    ) -> tuple[list[ActivityEntry], str | None]:
        return self._catalog.page(environment_id, limit=limit, continuation=continuation)
