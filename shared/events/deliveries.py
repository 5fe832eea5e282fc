"""Deliveries: the fan-out of each published event to its targets — the Event Grid topic, when one is
configured, and every webhook of the namespace that wants the event — and each delivery's attempts.

A delivery is a row (the event's JSON, its status, its attempts) driven by ``event-deliveries`` queue
messages, like an operation: a message only says which delivery to look at. A worker claims it, sends
it, records the attempt; a failed attempt is tried again after the next delay of the retry schedule
(about a day in all by default), after the last one the delivery is given up and marked ``Failed``.
The fan-out is idempotent: the same event (a resend after a crash has the same id) finds its deliveries
recorded already and sends nothing twice."""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared.adapters.cloudevents import CONTENT_TYPE, decode
from shared.adapters.eventgrid import EventSink
from shared.adapters.queues import WorkQueue
from shared.adapters.webhooks import WebhookTransport, signature_headers
from shared.catalog.events import DeliveryCatalog, WebhookCatalog, delivery_key
from shared.clock import Clock
from shared.domain.addresses import AddressRefused, Resolver, checked_addresses, endpoint_of
from shared.domain.events import EVENT_GRID_TARGET, Attempt, Delivery, DeliveryStatus
from shared.errors import AlreadyExists, StaleRecord
from shared.events.secrets import WebhookSecrets
from shared.faults import describe

logger = logging.getLogger("appbackups.events")

DELIVER = "delivery"  # the kind of a delivery message
USER_AGENT = "appbackups-webhooks/1"

# After each failed attempt, the wait before the next: 8 attempts over about 27 hours (as Standard
# Webhooks' reference implementation retries), then the delivery is given up.
DEFAULT_RETRY_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 36000)


@dataclass(frozen=True)
class DeliverySettings:
    retry_delays: tuple[timedelta, ...] = tuple(timedelta(seconds=s) for s in DEFAULT_RETRY_SECONDS)
    timeout_seconds: float = 15.0
    development_mode: bool = False


def _error_of(error: BaseException) -> str:
    text = describe(error)
    if text.startswith("Unexpected error"):
        first = str(error).splitlines()[0] if str(error) else ""
        first = re.sub(r"<[^>]*object at 0x[0-9a-f]+>:?\s*", "", first)  # urllib3 names its connection object
        text = f"{type(error).__name__}: {first}".strip(": ")
    return text[:300]


class DeliveryService:
    def __init__(
        self,
        webhooks: WebhookCatalog,
        deliveries: DeliveryCatalog,
        queue: WorkQueue,
        clock: Clock,
        settings: DeliverySettings,
        transport: WebhookTransport,
        resolver: Resolver,
        secrets: WebhookSecrets,
        event_grid: EventSink | None = None,
    ) -> None:
        self._webhooks = webhooks
        self._secrets = secrets
        self._deliveries = deliveries
        self._queue = queue
        self._clock = clock
        self.settings = settings
        self._transport = transport
        self._resolver = resolver
        self._event_grid = event_grid

    # -- fan-out ---------------------------------------------------------------------------------

    def fan_out(self, document: str) -> list[str]:
        """Record a delivery of the event for each of its targets and queue it; the targets queued."""
        event = decode(document)
        targets = [EVENT_GRID_TARGET] if self._event_grid is not None else []
        webhooks = self._webhooks.of_namespace(event.namespace)
        targets += [webhook.target for webhook in webhooks if webhook.wants(event.type)]
        queued = []
        for target in targets:
            delivery = Delivery(
                target=target,
                event_id=event.id,
                event_type=event.type.value,
                event_time=event.time,
                subject=event.subject,
                body=document,
            )
            try:
                self._deliveries.add(delivery)
            except AlreadyExists:
                existing = self._deliveries.find(target, delivery_key(event.time, event.id))
                if existing is None or existing.status is not DeliveryStatus.PENDING or existing.attempts:
                    continue  # delivered, given up, or under way: nothing to send again
                # Recorded by a fan-out that may have died before it queued it: queue it (a duplicate is dropped).
            self._send(target, delivery_key(event.time, event.id))
            queued.append(target)
        return queued

    # -- one delivery ----------------------------------------------------------------------------

    def deliver(self, target: str, key: str) -> Delivery | None:
        """Act on one delivery message: attempt it if it is due, or put the message off until it is."""
        delivery = self._deliveries.find(target, key)
        if delivery is None or delivery.status is not DeliveryStatus.PENDING:
            return None
        now = self._clock()
        if delivery.next_attempt_on is not None and delivery.next_attempt_on > now:
            self._send(target, key, delivery.next_attempt_on - now)
            return None
        if delivery.claimed_until is not None and delivery.claimed_until > now:
            return None  # another worker is sending it; its outcome decides what follows
        try:
            claimed = self._deliveries.save(
                replace(delivery, claimed_until=now + timedelta(seconds=self.settings.timeout_seconds + 30))
            )
        except StaleRecord:
            return None
        attempt = self._attempt(claimed)
        attempts = (*claimed.attempts, attempt)
        done = self._clock()
        if attempt.succeeded:
            status, next_on = DeliveryStatus.DELIVERED, None
        elif attempt.status_code == 410 or len(attempts) > len(self.settings.retry_delays):
            status, next_on = DeliveryStatus.FAILED, None  # 410 Gone: the receiver says it will never take it
        else:
            status, next_on = DeliveryStatus.PENDING, done + self.settings.retry_delays[len(attempts) - 1]
        saved = self._deliveries.save(
            replace(claimed, attempts=attempts, status=status, next_attempt_on=next_on, claimed_until=None)
        )
        if status is DeliveryStatus.PENDING:
            logger.info(
                "delivery of event %s to %s: attempt %d failed (%s), again at %s",
                saved.event_id,
                target,
                len(attempts),
                attempt.error,
                next_on.isoformat() if next_on else "",
            )
            self._send(target, key, (next_on or done) - done)
        elif status is DeliveryStatus.FAILED:
            logger.warning(
                "delivery of event %s (%s) to %s given up after %d attempts: %s",
                saved.event_id,
                saved.event_type,
                target,
                len(attempts),
                attempt.error,
            )
        return saved

    def _attempt(self, delivery: Delivery) -> Attempt:
        started, began = self._clock(), time.monotonic()
        try:
            if delivery.target == EVENT_GRID_TARGET:
                if self._event_grid is None:
                    return Attempt(started, None, "No Event Grid topic is configured any more.")
                self._event_grid.publish([delivery.body])
                return Attempt(started, 200, "", int((time.monotonic() - began) * 1000))
            return self._post(delivery, started, began)
        except AddressRefused as error:
            return Attempt(started, None, str(error), int((time.monotonic() - began) * 1000))
        except Exception as error:  # whatever stopped this attempt is recorded; the next one may succeed
            return Attempt(started, None, _error_of(error), int((time.monotonic() - began) * 1000))

    def _post(self, delivery: Delivery, started: datetime, began: float) -> Attempt:
        namespace, _, webhook_id = delivery.target.partition("~")
        webhook = self._webhooks.find(namespace, webhook_id)
        if webhook is None:
            return Attempt(started, None, "The webhook was removed.")
        development = self.settings.development_mode
        endpoint = endpoint_of(webhook.url, development_mode=development)
        addresses = checked_addresses(endpoint, self._resolver, development_mode=development)
        headers = {
            "content-type": f"{CONTENT_TYPE}; charset=utf-8",
            "user-agent": USER_AGENT,
            **signature_headers(self._secrets.signing_secrets(webhook), delivery.event_id, started, delivery.body),
        }
        answer = self._transport.post(
            endpoint, addresses[0], delivery.body.encode("utf-8"), headers, self.settings.timeout_seconds
        )
        elapsed = int((time.monotonic() - began) * 1000)
        if 200 <= answer.status < 300:
            return Attempt(started, answer.status, "", elapsed)
        detail = " ".join(answer.text.split())[:200]
        return Attempt(started, answer.status, f"HTTP {answer.status}" + (f": {detail}" if detail else ""), elapsed)

    def _send(self, target: str, key: str, delay: timedelta = timedelta(0)) -> None:
        self._queue.send(
            {"kind": DELIVER, "target": target, "key": key},
            delay_seconds=math.ceil(max(delay.total_seconds(), 0)),
        )

    # -- retention -------------------------------------------------------------------------------

    def forget_before(self, cutoff: datetime) -> int:
        """Remove the records of deliveries of events older than ``cutoff`` that are over."""
        removed = 0
        for delivery in list(self._deliveries.all()):
            if delivery.event_time < cutoff and delivery.status is not DeliveryStatus.PENDING:
                self._deliveries.remove(delivery)
                removed += 1
        return removed
