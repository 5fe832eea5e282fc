"""The webhooks table (per namespace, one row per webhook: its secret's name and versions in the secret store,
never the secret) and the deliveries table (per target, one row per event on its way there, newest event
first, with its attempts)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from shared.adapters.tables import Row, RowTable
from shared.catalog.codec import Codec, dumps, from_iso, loads, to_iso
from shared.catalog.repository import KeyOrderedRepository, Repository
from shared.domain.backups import Actor
from shared.domain.events import Attempt, Delivery, DeliveryStatus, SigningKey, Webhook
from shared.errors import NotFound

_MAX_MILLIS = 10**13 - 1
KEPT_ATTEMPTS = 20  # the most recent attempts a delivery row keeps (a day of retries is 8)
PLAIN_SECRET = "Secret"  # noqa: S105 - the column where rows of before kept the secret itself, in plain text


def _key_to_json(key: SigningKey) -> dict[str, object]:
    return {"version": key.version, "until": to_iso(key.until)}


def _key_from_json(document: dict[str, object]) -> SigningKey:
    return SigningKey(str(document["version"]), from_iso(document.get("until")))  # type: ignore[arg-type]


def _webhook_to_row(webhook: Webhook) -> Row:
    return Row(
        webhook.namespace,
        webhook.id,
        {
            "Url": webhook.url,
            "Events": ",".join(webhook.events),
            "SecretName": webhook.secret_name or None,
            "SecretVersions": dumps({"versions": [_key_to_json(key) for key in webhook.signing_keys]}),
            # Only a row not moved yet still has it; the move writes the row without it.
            PLAIN_SECRET: webhook.plain_secret or None,
            "Description": webhook.description,
            "CreatedOn": to_iso(webhook.created_on),
            "CreatedById": webhook.created_by.id,
            "CreatedByName": webhook.created_by.name,
            "UpdatedOn": to_iso(webhook.updated_on),
        },
        webhook.etag,
    )


def _webhook_from_row(row: Row) -> Webhook:
    return Webhook(
        namespace=row.partition_key,
        id=row.row_key,
        url=row["Url"],
        events=tuple(item for item in (row.get("Events") or "").split(",") if item),
        secret_name=row.get("SecretName") or "",
        signing_keys=tuple(_key_from_json(item) for item in loads(row.get("SecretVersions")).get("versions", [])),
        plain_secret=row.get(PLAIN_SECRET) or "",
        description=row.get("Description") or "",
        created_on=from_iso(row["CreatedOn"]),  # type: ignore[arg-type]
        created_by=Actor(row.get("CreatedById") or "", row.get("CreatedByName") or ""),
        updated_on=from_iso(row["UpdatedOn"]),  # type: ignore[arg-type]
        etag=row.etag,
    )


_WEBHOOK_CODEC = Codec(_webhook_to_row, _webhook_from_row, lambda webhook: f"Webhook {webhook.id}")


class WebhookCatalog:
    def __init__(self, table: RowTable) -> None:
        self._webhooks = Repository(table, _WEBHOOK_CODEC)

    def find(self, namespace: str, webhook_id: str) -> Webhook | None:
        return self._webhooks.load(namespace, webhook_id)

    def get(self, namespace: str, webhook_id: str) -> Webhook:
        webhook = self.find(namespace, webhook_id)
        if webhook is None:
            raise NotFound(f"Namespace {namespace!r} has no webhook {webhook_id!r}.", code="webhook_not_found")
        return webhook

    def of_namespace(self, namespace: str) -> list[Webhook]:
        return list(self._webhooks.all(namespace))

    def add(self, webhook: Webhook) -> Webhook:
        return self._webhooks.insert(webhook)

    def save(self, webhook: Webhook) -> Webhook:
        """Only if nobody changed the webhook since it was read (else ``StaleRecord``)."""
        return self._webhooks.save(webhook)

    def update(self, namespace: str, webhook_id: str, change: Callable[[Webhook], Webhook]) -> Webhook | None:
        """``change`` applied to the webhook as it is now, again when another writer was first."""
        return self._webhooks.update(namespace, webhook_id, change)

    def remove(self, namespace: str, webhook_id: str) -> None:
        self._webhooks.remove(namespace, webhook_id)


def delivery_key(event_time: datetime, event_id: str) -> str:
    """Newest event first (Table Storage lists keys ascending); the same key for the same event."""
    return f"{_MAX_MILLIS - int(event_time.timestamp() * 1000):013d}-{event_id}"


def _attempt_to_json(attempt: Attempt) -> dict[str, object]:
    return {
        "on": to_iso(attempt.on),
        "statusCode": attempt.status_code,
        "error": attempt.error,
        "durationMs": attempt.duration_ms,
    }


def _attempt_from_json(document: dict[str, object]) -> Attempt:
    code = document.get("statusCode")
    return Attempt(
        on=from_iso(str(document["on"])),  # type: ignore[arg-type]
        status_code=int(code) if isinstance(code, int) else None,
        error=str(document.get("error") or ""),
        duration_ms=int(document.get("durationMs") or 0),  # type: ignore[call-overload]
    )


def _delivery_to_row(delivery: Delivery) -> Row:
    return Row(
        delivery.target,
        delivery_key(delivery.event_time, delivery.event_id),
        {
            "EventId": delivery.event_id,
            "EventType": delivery.event_type,
            "EventTime": to_iso(delivery.event_time),
            "Subject": delivery.subject,
            "Status": delivery.status.value,
            "NextAttemptOn": to_iso(delivery.next_attempt_on),
            "ClaimedUntil": to_iso(delivery.claimed_until),
            "AttemptCount": len(delivery.attempts),
            "Attempts": dumps({"attempts": [_attempt_to_json(a) for a in delivery.attempts[-KEPT_ATTEMPTS:]]}),
            "Body": delivery.body,
        },
        delivery.etag,
    )


def _delivery_from_row(row: Row) -> Delivery:
    return Delivery(
        target=row.partition_key,
        event_id=row["EventId"],
        event_type=row["EventType"],
        event_time=from_iso(row["EventTime"]),  # type: ignore[arg-type]
        subject=row.get("Subject") or "",
        body=row.get("Body") or "",
        status=DeliveryStatus(row["Status"]),
        attempts=tuple(_attempt_from_json(item) for item in loads(row.get("Attempts")).get("attempts", [])),
        next_attempt_on=from_iso(row.get("NextAttemptOn")),
        claimed_until=from_iso(row.get("ClaimedUntil")),
        etag=row.etag,
    )


_DELIVERY_CODEC = Codec(
    _delivery_to_row, _delivery_from_row, lambda delivery: f"Delivery of {delivery.event_id} to {delivery.target}"
)


class DeliveryCatalog:
    """Newest event first."""

    def __init__(self, table: RowTable) -> None:
        self._deliveries = KeyOrderedRepository(table, _DELIVERY_CODEC)

    def find(self, target: str, key: str) -> Delivery | None:
        return self._deliveries.load(target, key)

    def add(self, delivery: Delivery) -> Delivery:
        """Record a new delivery; raises AlreadyExists when this event is on its way to this target already."""
        return self._deliveries.insert(delivery)

    def save(self, delivery: Delivery) -> Delivery:
        return self._deliveries.save(delivery)

    def page(self, target: str, *, limit: int, continuation: str | None) -> tuple[list[Delivery], str | None]:
        return self._deliveries.page(target, limit=limit, continuation=continuation)

    def latest(self, target: str) -> Delivery | None:
        return self._deliveries.first(target)

    def of_target(self, target: str) -> Iterator[Delivery]:
        return self._deliveries.all(target)

    def remove(self, delivery: Delivery) -> None:
        self._deliveries.remove(delivery.target, delivery_key(delivery.event_time, delivery.event_id))

    def all(self) -> Iterator[Delivery]:
        return self._deliveries.all()
