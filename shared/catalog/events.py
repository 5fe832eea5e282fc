"""The webhooks table (per namespace, one row per webhook) and the deliveries table (per target, one row
per event on its way there, newest event first, with its attempts)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

from shared.adapters.tables import Row, RowChanged, RowExists, RowTable, iterate
from shared.catalog.codec import dumps, from_iso, loads, to_iso
from shared.domain.backups import Actor
from shared.domain.events import Attempt, Delivery, DeliveryStatus, Webhook
from shared.errors import AlreadyExists, NotFound, StaleRecord

_MAX_MILLIS = 10**13 - 1
KEPT_ATTEMPTS = 20  # the most recent attempts a delivery row keeps (a day of retries is 8)


def _webhook_to_row(webhook: Webhook) -> Row:
    return Row(
        webhook.namespace,
        webhook.id,
        {
            "Url": webhook.url,
            "Events": ",".join(webhook.events),
            "Secret": webhook.secret,
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
        secret=row.get("Secret") or "",
        description=row.get("Description") or "",
        created_on=from_iso(row["CreatedOn"]),  # type: ignore[arg-type]
        created_by=Actor(row.get("CreatedById") or "", row.get("CreatedByName") or ""),
        updated_on=from_iso(row["UpdatedOn"]),  # type: ignore[arg-type]
        etag=row.etag,
    )


class WebhookCatalog:
    def __init__(self, table: RowTable) -> None:
        self._table = table

    def find(self, namespace: str, webhook_id: str) -> Webhook | None:
        row = self._table.get(namespace, webhook_id)
        return _webhook_from_row(row) if row else None

    def get(self, namespace: str, webhook_id: str) -> Webhook:
        webhook = self.find(namespace, webhook_id)
        if webhook is None:
            raise NotFound(f"Namespace {namespace!r} has no webhook {webhook_id!r}.", code="webhook_not_found")
        return webhook

    def of_namespace(self, namespace: str) -> list[Webhook]:
        return [_webhook_from_row(row) for row in iterate(self._table, namespace)]

    def add(self, webhook: Webhook) -> Webhook:
        try:
            stored = self._table.insert(_webhook_to_row(webhook))
        except RowExists as error:
            raise AlreadyExists(f"Webhook {webhook.id} exists already.") from error
        return replace(webhook, etag=stored.etag)

    def save(self, webhook: Webhook) -> Webhook:
        try:
            stored = self._table.replace(_webhook_to_row(webhook), webhook.etag)
        except RowChanged as error:
            raise StaleRecord(f"Webhook {webhook.id} was changed by another request; try again.") from error
        return replace(webhook, etag=stored.etag)

    def remove(self, namespace: str, webhook_id: str) -> None:
        self._table.delete(namespace, webhook_id)


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


class DeliveryCatalog:
    def __init__(self, table: RowTable) -> None:
        self._table = table

    def find(self, target: str, key: str) -> Delivery | None:
        row = self._table.get(target, key)
        return _delivery_from_row(row) if row else None

    def add(self, delivery: Delivery) -> Delivery:
        """Record a new delivery; raises AlreadyExists when this event is on its way to this target already."""
        try:
            stored = self._table.insert(_delivery_to_row(delivery))
        except RowExists as error:
            raise AlreadyExists(f"Event {delivery.event_id} is on its way to {delivery.target} already.") from error
        return replace(delivery, etag=stored.etag)

    def save(self, delivery: Delivery) -> Delivery:
        try:
            stored = self._table.replace(_delivery_to_row(delivery), delivery.etag)
        except RowChanged as error:
            raise StaleRecord(f"Delivery of {delivery.event_id} was changed meanwhile.") from error
        return replace(delivery, etag=stored.etag)

    def page(self, target: str, *, limit: int, continuation: str | None) -> tuple[list[Delivery], str | None]:
        page = self._table.query(target, limit=limit, continuation=continuation)
        return [_delivery_from_row(row) for row in page.rows], page.continuation

    def latest(self, target: str) -> Delivery | None:
        deliveries, _ = self.page(target, limit=1, continuation=None)
        return deliveries[0] if deliveries else None

    def of_target(self, target: str) -> Iterator[Delivery]:
        return (_delivery_from_row(row) for row in iterate(self._table, target))

    def remove(self, delivery: Delivery) -> None:
        self._table.delete(delivery.target, delivery_key(delivery.event_time, delivery.event_id))

    def all(self) -> Iterator[Delivery]:
        return (_delivery_from_row(row) for row in iterate(self._table))
