"""Recording and reading the activity log."""

from __future__ import annotations

from shared.catalog.activity import ActivityCatalog
from shared.catalog.codec import newest_first_key
from shared.clock import Clock
from shared.domain.activity import Action, ActivityEntry, Outcome
from shared.identity import Principal


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
        snapshot_id: str | None = None,
        operation_id: str | None = None,
        entry_id: str | None = None,
    ) -> ActivityEntry:
        """Append an entry. Work that may run again after a crash passes an ``entry_id`` it has
        checkpointed (``new_entry_id``), so the entry is written once whatever happens."""
        now = self._clock()
        entry = ActivityEntry(
            id=entry_id or newest_first_key(now),
            environment_id=environment_id,
            action=action,
            outcome=outcome,
            occurred_on=now,
            actor_id=actor.id,
            actor_name=actor.name,
            message=message,
            snapshot_id=snapshot_id,
            operation_id=operation_id,
        )
        return self._catalog.append(entry)

    def page(
        self, environment_id: str, *, limit: int, continuation: str | None
    ) -> tuple[list[ActivityEntry], str | None]:
        return self._catalog.page(environment_id, limit=limit, continuation=continuation)
