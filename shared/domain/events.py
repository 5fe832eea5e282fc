"""Events: what an operator learns without polling — every end of a job, and the conditions to act on —
and the webhooks of a namespace that receive them, with their delivery attempts.

An event is a CloudEvents 1.0 event (the JSON encoding lives in ``shared/adapters/cloudevents.py``). Its
``id`` is derived from the occurrence (e.g. the operation and its outcome), never drawn at random, so a
resend after a crash carries the same id and a consumer can de-duplicate."""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.domain.backups import Actor

# The namespace of the event ids (uuid5): fixed, so an id can be recomputed from its occurrence.
_EVENT_IDS = uuid.UUID("5b0e7d4e-2f61-4c8a-9b7a-61a3c0f4d2e9")


class EventType(StrEnum):
    BACKUP_FINISHED = "appbackups.backup.finished"
    BACKUP_WARNED = "appbackups.backup.warned"  # finished with warnings
    BACKUP_FAILED = "appbackups.backup.failed"
    BACKUP_CANCELLED = "appbackups.backup.cancelled"
    BACKUP_EXPIRED = "appbackups.backup.expired"  # forgotten by pruning
    RESTORE_FINISHED = "appbackups.restore.finished"
    RESTORE_FAILED = "appbackups.restore.failed"
    RESTORE_CANCELLED = "appbackups.restore.cancelled"
    VERIFICATION_PASSED = "appbackups.verification.passed"  # raised by verification drills
    VERIFICATION_FAILED = "appbackups.verification.failed"
    DOWNLOAD_READY = "appbackups.download.ready"
    DOWNLOAD_FAILED = "appbackups.download.failed"
    DOWNLOAD_CANCELLED = "appbackups.download.cancelled"
    UPLOAD_FINISHED = "appbackups.upload.finished"
    UPLOAD_FAILED = "appbackups.upload.failed"
    UPLOAD_CANCELLED = "appbackups.upload.cancelled"
    SCHEDULE_MISSED = "appbackups.schedule.missed"  # no successful backup within the freshness window


# The events an operator must act on: what the Bicep's optional failure subscription receives.
FAILURES = frozenset(
    {
        EventType.BACKUP_FAILED,
        EventType.RESTORE_FAILED,
        EventType.VERIFICATION_FAILED,
        EventType.DOWNLOAD_FAILED,
        EventType.UPLOAD_FAILED,
        EventType.SCHEDULE_MISSED,
    }
)

ALL_EVENTS = "*"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def valid_secret(secret: str) -> bool:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 24 to 64 random bytes."""
    if not secret.startswith(SECRET_PREFIX):
        return False
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return False
    return 24 <= len(key) <= 64


def event_id(occurrence: str) -> str:
    """The id of the event of one occurrence (e.g. ``"<operation id>/appbackups.backup.finished"``)."""
    return str(uuid.uuid5(_EVENT_IDS, occurrence))


def source_of(namespace: str, environment_id: str) -> str:
    return f"/namespaces/{namespace}/environments/{environment_id}"


@dataclass(frozen=True)
class Event:
    id: str
    type: EventType
    source: str  # /namespaces/{ns}/environments/{env}
    subject: str  # backups/{id}, restores/{id}, downloads/{id}, uploads/{id}, schedules/backups
    time: datetime  # when it happened
    namespace: str
    data: dict[str, Any] = field(default_factory=dict)


def matches(pattern: str, event_type: str) -> bool:
    """``*`` is every event; ``appbackups.backup.*`` every event of backups; otherwise the exact type."""
    if pattern == ALL_EVENTS:
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def valid_pattern(pattern: str) -> bool:
    if pattern == ALL_EVENTS or pattern in {member.value for member in EventType}:
        return True
    return pattern.endswith(".*") and any(member.value.startswith(pattern[:-1]) for member in EventType)


def secret_name_of(namespace: str, webhook_id: str) -> str:
    """The name a webhook's secret is kept under in the secret store: the same for the same webhook, and within
    Key Vault's rules (letters, digits and hyphens, at most 127) whatever the namespace and id."""
    return "webhook-" + hashlib.sha256(f"{namespace}/{webhook_id}".encode()).hexdigest()[:48]


@dataclass(frozen=True)
class SigningKey:
    """A version of a webhook's secret in the secret store: the current one (no ``until``), or one a new secret
    replaced, which still signs beside it until its grace period ends."""

    version: str
    until: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.until is None or self.until > now


@dataclass(frozen=True)
class Webhook:
    """A namespace's receiver of events: an HTTPS URL, the events it wants, and the secret its deliveries
    are signed with (Standard Webhooks). The secret itself lives in the secret store (Key Vault); the webhook
    holds its name and versions. It is write-only: the API says only whether it is set."""

    namespace: str
    id: str
    url: str
    events: tuple[str, ...]
    created_on: datetime
    created_by: Actor
    updated_on: datetime
    description: str = ""
    secret_name: str = ""
    signing_keys: tuple[SigningKey, ...] = ()  # the current version first, then replaced ones in their grace period
    plain_secret: str = ""  # a webhook stored before secrets moved to the store: moved there on first use
    etag: str = ""

    @property
    def secret_set(self) -> bool:
        return bool(self.signing_keys or self.plain_secret)

    def wants(self, event_type: str) -> bool:
        return any(matches(pattern, event_type) for pattern in self.events)

    @property
    def target(self) -> str:
        return webhook_target(self.namespace, self.id)


EVENT_GRID_TARGET = "~eventgrid"  # the deliveries to the Event Grid topic, when one is configured


def webhook_target(namespace: str, webhook_id: str) -> str:
    return f"{namespace}~{webhook_id}"


class DeliveryStatus(StrEnum):
    PENDING = "Pending"  # waiting for its first or next attempt
    DELIVERED = "Delivered"
    FAILED = "Failed"  # every attempt failed: given up


@dataclass(frozen=True)
class Attempt:
    on: datetime
    status_code: int | None  # None when no answer came (refused, timed out, not allowed)
    error: str = ""
    duration_ms: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one target (a webhook, or the Event Grid topic)."""

    target: str
    event_id: str
    event_type: str
    event_time: datetime
    subject: str
    body: str  # the CloudEvent, JSON: what is sent, the same on every attempt
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: tuple[Attempt, ...] = ()
    next_attempt_on: datetime | None = None
    claimed_until: datetime | None = None  # a worker is sending it now
    etag: str = ""

    @property
    def last_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None
