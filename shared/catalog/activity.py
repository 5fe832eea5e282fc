"""The activity table: per environment, newest entry first."""

from __future__ import annotations

from shared.adapters.tables import Row, RowTable
from shared.catalog.codec import from_iso, to_iso
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
            "SnapshotId": entry.snapshot_id,
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
        snapshot_id=row.get("SnapshotId"),
        operation_id=row.get("OperationId"),
    )


class ActivityCatalog:
    def __init__(self, table: RowTable) -> None:
        self._table = table

    def append(self, entry: ActivityEntry) -> ActivityEntry:
        """Write the entry; writing the same entry (same id) again replaces it, so a repeated step
        that logs under a checkpointed id logs once."""
        self._table.upsert(_to_row(entry))
        return entry

    def page(
        self, environment_id: str, *, limit: int, continuation: str | None
    ) -> tuple[list[ActivityEntry], str | None]:
        result = self._table.query(environment_id, limit=limit, continuation=continuation)
        return [_from_row(row) for row in result.rows], result.continuation
