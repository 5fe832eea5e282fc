"""Request and response bodies of the webhook routes, and the schemas of the events (OpenAPI ``webhooks``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from shared.contracts.common import NAMESPACE_PATTERN, ApiModel
from shared.domain.events import Attempt, Delivery, DeliveryStatus, EventType, Webhook, valid_pattern, valid_secret

WEBHOOK_ID_PATTERN = NAMESPACE_PATTERN  # lower-case letters, digits and hyphens; 1 to 63 characters
WebhookId = Annotated[str, StringConstraints(pattern=WEBHOOK_ID_PATTERN)]


class WebhookBody(ApiModel):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2000, strip_whitespace=True)] = Field(
        description="Where the events are POSTed: https, to a host whose addresses are all public (development "
        "mode also allows http and loopback)."
    )
    events: list[str] = Field(
        min_length=1,
        max_length=50,
        description="Event types (`appbackups.backup.failed`), all of a kind (`appbackups.backup.*`), or `*`.",
    )
    secret: str | None = Field(
        default=None,
        description="Standard Webhooks secret, `whsec_` + base64 of 24 to 64 random bytes: the deliveries are "
        "signed with it. Write-only; required for a new webhook, kept when a replacement omits it.",
    )
    description: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] = ""

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str]) -> list[str]:
        unknown = [pattern for pattern in events if not valid_pattern(pattern)]
        if unknown:
            raise ValueError(f"unknown event types: {', '.join(unknown)}")
        return list(dict.fromkeys(events))

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, secret: str | None) -> str | None:
        if secret is not None and not valid_secret(secret):
            raise ValueError("a secret is whsec_ followed by the base64 of 24 to 64 random bytes")
        return secret


class AttemptView(ApiModel):
    on: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; absent when no answer came.")
    error: str = ""
    duration_ms: int

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptView:
        return cls(on=attempt.on, status_code=attempt.status_code, error=attempt.error, duration_ms=attempt.duration_ms)


class DeliveryView(ApiModel):
    event_id: str = Field(description="The event's id: also its `webhook-id` header, the same on every attempt.")
    event_type: str
    subject: str
    event_time: datetime
    status: DeliveryStatus = Field(description="Pending (waiting for an attempt), Delivered, or Failed (given up).")
    attempts: list[AttemptView] = Field(description="The most recent attempts, oldest first.")
    next_attempt_on: datetime | None = None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryView:
        return cls(
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            subject=delivery.subject,
            event_time=delivery.event_time,
            status=delivery.status,
            attempts=[AttemptView.of(attempt) for attempt in delivery.attempts],
            next_attempt_on=delivery.next_attempt_on,
        )


class WebhookView(ApiModel):
    namespace: str
    id: str
    url: str
    events: list[str]
    description: str
    secret_set: bool = Field(description="Whether a signing secret is set; the secret itself is never shown.")
    created_on: datetime
    created_by: str
    updated_on: datetime
    last_delivery: DeliveryView | None = Field(default=None, description="The delivery of the latest event.")

    @classmethod
    def of(cls, webhook: Webhook, last: Delivery | None = None) -> WebhookView:
        return cls(
            namespace=webhook.namespace,
            id=webhook.id,
            url=webhook.url,
            events=list(webhook.events),
            description=webhook.description,
            secret_set=webhook.secret_set,
            created_on=webhook.created_on,
            created_by=webhook.created_by.name or webhook.created_by.id,
            updated_on=webhook.updated_on,
            last_delivery=DeliveryView.of(last) if last else None,
        )


# -- the events, as OpenAPI describes them -----------------------------------------------------------


class Who(ApiModel):
    id: str
    name: str


class JobEventData(ApiModel):
    """`data` of the events that end a job: backup, restore, download and upload. Fields that do not
    apply to a kind are absent."""

    namespace: str
    environment_id: str = Field(description="The environment the job ran on (a restore's target).")
    operation_id: str
    status: str = Field(description="The job's status as the API shows it: Finished, Failed, Cancelled, Ready.")
    reason: str | None = Field(default=None, description="Why it failed or was cancelled.")
    error_step: str | None = None
    created_on: datetime
    finished_on: datetime
    duration_seconds: float
    created_by: Who
    cancelled_by: Who | None = None
    backup_id: str | None = None
    tier: str | None = None
    comment: str | None = None
    attempts: int | None = None
    dump_size: int | None = None
    database_size: int | None = None
    file_count: int | None = None
    files_size: int | None = None
    files_copied: int | None = None
    warnings: list[str] | None = Field(default=None, description="backup.warned: what the backup warns of.")
    restore_id: str | None = None
    source_environment_id: str | None = None
    pre_restore_backup_id: str | None = None
    point_in_time: datetime | None = Field(
        default=None, description="A backup of the past, or a restore to a point in time: the instant it is as of."
    )
    files_removed: int | None = None
    download_id: str | None = None
    data_type: str | None = None
    file_name: str | None = None
    archive_size: int | None = None
    expires_on: datetime | None = Field(default=None, description="download.ready: until when it can be fetched.")
    upload_id: str | None = None
    upload_size: int | None = None


class ScheduleMissedData(ApiModel):
    namespace: str
    environment_id: str
    state: str
    last_successful_backup_on: datetime | None
    missed_since: datetime
    hours_without_backup: float
    freshness_hours: float


class BackupExpiredData(ApiModel):
    namespace: str
    environment_id: str
    backup_id: str
    tier: str
    status: str
    dump_size: int | None = None
    database_size: int | None = None
    file_count: int | None = None
    files_size: int | None = None
    created_on: datetime
    expires_on: datetime
    keep_until: datetime | None = None
    pruned_on: datetime


class VerificationEventData(ApiModel):
    """`data` of the events that end a restore drill (verification.passed, verification.failed)."""

    namespace: str
    environment_id: str
    operation_id: str
    status: str = Field(description="The drill's status: Finished (passed), Failed.")
    reason: str | None = Field(default=None, description="Why it failed.")
    error_step: str | None = None
    created_on: datetime
    finished_on: datetime
    duration_seconds: float
    created_by: Who
    cancelled_by: Who | None = None
    drill_id: str
    backup_id: str
    restore_seconds: float | None = Field(default=None, description="How long loading the dump took.")
    checks: list[dict[str, Any]] = Field(default_factory=list, description="Each check, its status and detail.")
    point_in_time: datetime | None = Field(
        default=None, description="A drill of an instant of the recovery window: the instant it proved."
    )


EVENT_DATA: dict[EventType, type[ApiModel]] = {
    **{event: JobEventData for event in EventType},
    EventType.SCHEDULE_MISSED: ScheduleMissedData,
    EventType.BACKUP_EXPIRED: BackupExpiredData,
    EventType.VERIFICATION_PASSED: VerificationEventData,
    EventType.VERIFICATION_FAILED: VerificationEventData,
}

EVENT_SUMMARIES: dict[EventType, str] = {
    EventType.BACKUP_FINISHED: "A backup finished (manual, scheduled, pre-restore).",
    EventType.BACKUP_WARNED: "A backup finished with warnings (raised once backups record warnings).",
    EventType.BACKUP_FAILED: "A backup failed for good (all attempts used); its partial data was removed.",
    EventType.BACKUP_CANCELLED: "A backup being made was cancelled.",
    EventType.BACKUP_EXPIRED: "Pruning forgot an expired backup.",
    EventType.RESTORE_FINISHED: "A restore finished; the target is unlocked (Stopped).",
    EventType.RESTORE_FAILED: "A restore failed and was undone.",
    EventType.RESTORE_CANCELLED: "A restore was cancelled before its COMMIT; the target is as it was.",
    EventType.VERIFICATION_PASSED: "A verification drill restored a backup and found it sound (raised by drills).",
    EventType.VERIFICATION_FAILED: "A verification drill found a broken backup (raised by drills).",
    EventType.DOWNLOAD_READY: "A download archive is ready; fetch its URL from the API (the event holds none).",
    EventType.DOWNLOAD_FAILED: "A download could not be prepared.",
    EventType.DOWNLOAD_CANCELLED: "A download being prepared was cancelled.",
    EventType.UPLOAD_FINISHED: "An uploaded archive was ingested and is a backup now.",
    EventType.UPLOAD_FAILED: "An uploaded archive was refused or could not be ingested.",
    EventType.UPLOAD_CANCELLED: "An upload being ingested was cancelled.",
    EventType.SCHEDULE_MISSED: "An environment that can be backed up has no successful backup for 26 hours.",
}


def event_envelope_schema(event_type: EventType, data_ref: dict[str, Any]) -> dict[str, Any]:
    """The CloudEvents 1.0 JSON document of one event type, with its `data` schema."""
    return {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time", "subject", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "description": "Derived from the occurrence: a resend has the same id."},
            "source": {"type": "string", "description": "/namespaces/{namespace}/environments/{environment}"},
            "type": {"const": event_type.value},
            "subject": {"type": "string", "description": "backups/{id}, restores/{id}, uploads/{id}, …"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "appbackupsnamespace": {"type": "string", "description": "Extension attribute: the namespace."},
            "data": data_ref,
        },
    }
