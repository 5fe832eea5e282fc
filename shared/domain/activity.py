"""The activity log: one entry per backup, restore, upload, download, delete, prune and state change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Action(StrEnum):
    REGISTER = "register"
    UPDATE = "update"
    DEREGISTER = "deregister"
    STOP = "stop"
    START = "start"
    BACKUP = "backup"
    EDIT = "edit"
    DELETE = "delete"
    RESTORE = "restore"
    DOWNLOAD = "download"
    UPLOAD = "upload"
    PRUNE = "prune"
    VERIFY = "verify"
    GRANT = "grant"
    REVOKE = "revoke"


class Outcome(StrEnum):
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class ActivityEntry:
    id: str
    environment_id: str
    action: Action
    outcome: Outcome
    occurred_on: datetime
    actor_id: str
    actor_name: str
    message: str = ""
    backup_id: str | None = None
    operation_id: str | None = None
