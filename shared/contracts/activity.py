"""Response body of the activity log."""

from __future__ import annotations

from datetime import datetime

from shared.contracts.common import ApiModel, BackupIdOrNone
from shared.domain.activity import Action, ActivityEntry, Outcome


class ActivityEntryView(ApiModel):
    id: str
    environment_id: str
    action: Action
    outcome: Outcome
    occurred_on: datetime
    actor_id: str
    actor_name: str
    message: str
    backup_id: BackupIdOrNone
    operation_id: str | None

    @classmethod
    def of(cls, entry: ActivityEntry) -> ActivityEntryView:
        return cls(
            id=entry.id,
            environment_id=entry.environment_id,
            action=entry.action,
            outcome=entry.outcome,
            occurred_on=entry.occurred_on,
            actor_id=entry.actor_id,
            actor_name=entry.actor_name,
            message=entry.message,
            backup_id=entry.backup_id,
            operation_id=entry.operation_id,
        )
