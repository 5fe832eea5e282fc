"""The webhooks of a namespace, on the request side: register (or replace) one, read, list and remove
them, and show their recent deliveries. A webhook's URL is checked when it is registered (and again
before every delivery): HTTPS, to a host whose addresses are all public. Its secret is write-only, and
kept in the secret store (``shared/events/secrets.py``), never in the webhook's row."""

from __future__ import annotations

import contextlib
from dataclasses import replace

from shared.catalog.events import DeliveryCatalog, WebhookCatalog
from shared.clock import Clock
from shared.domain.access import Principal
from shared.domain.addresses import AddressRefused, Resolver, checked_addresses, endpoint_of
from shared.domain.backups import Actor
from shared.domain.events import Delivery, Webhook, secret_name_of
from shared.errors import AlreadyExists, Conflict, InvalidRequest, StaleRecord
from shared.events.secrets import WebhookSecrets


class WebhookService:
    def __init__(
        self,
        webhooks: WebhookCatalog,
        deliveries: DeliveryCatalog,
        clock: Clock,
        resolver: Resolver,
        development_mode: bool,
        secrets: WebhookSecrets,
    ) -> None:
        self._webhooks = webhooks
        self._deliveries = deliveries
        self.secrets = secrets  # where its secret lives: read, moved, replaced
        self._clock = clock
        self._resolver = resolver
        self._development_mode = development_mode

    def check_url(self, url: str) -> None:
        try:
            endpoint = endpoint_of(url, development_mode=self._development_mode)
            checked_addresses(endpoint, self._resolver, development_mode=self._development_mode)
        except AddressRefused as error:
            raise InvalidRequest(str(error), code="webhook_url_refused") from error

    def put(
        self,
        namespace: str,
        webhook_id: str,
        *,
        url: str,
        events: tuple[str, ...],
        secret: str | None,
        description: str,
        caller: Principal,
    ) -> tuple[Webhook, bool]:
        """Register the webhook (True) or replace it (False); a replacement without a secret keeps the old one,
        one with a new secret keeps the old one signing too for the grace period."""
        self.check_url(url)
        now = self._clock()
        existing = self._webhooks.find(namespace, webhook_id)
        if existing is None:
            if not secret:
                raise InvalidRequest(
                    "A new webhook needs a secret (whsec_ and base64 of 24 to 64 random bytes) to sign its deliveries.",
                    code="webhook_secret_required",
                )
            webhook = self.secrets.with_new_secret(
                Webhook(
                    namespace=namespace,
                    id=webhook_id,
                    url=url,
                    events=events,
                    description=description,
                    created_on=now,
                    created_by=Actor(caller.id, caller.name),
                    updated_on=now,
                    secret_name=secret_name_of(namespace, webhook_id),
                ),
                secret,
            )
            try:
                return self._webhooks.add(webhook), True
            except AlreadyExists as error:
                self.secrets.abandon(None, webhook)
                raise Conflict(
                    f"Webhook {webhook_id} was registered by another request meanwhile; try again.",
                    code="concurrent_update",
                ) from error
        existing = self.secrets.moved(existing)
        changed = replace(existing, url=url, events=events, description=description, updated_on=now)
        if secret:
            changed = self.secrets.with_new_secret(changed, secret)
        try:
            saved = self._webhooks.save(changed)
        except StaleRecord:
            self.secrets.abandon(existing, changed)
            raise
        self.secrets.settle(existing, saved)
        return saved, False

    def get(self, namespace: str, webhook_id: str) -> Webhook:
        return self.secrets.moved_if_possible(self._webhooks.get(namespace, webhook_id))

    def of_namespace(self, namespace: str) -> list[Webhook]:
        return [self.secrets.moved_if_possible(webhook) for webhook in self._webhooks.of_namespace(namespace)]

    def remove(self, namespace: str, webhook_id: str) -> None:
        """Remove the webhook; its pending deliveries are dropped, its delivery records go and its secret is
        disabled in the secret store."""
        webhook = self._webhooks.get(namespace, webhook_id)
        self._webhooks.remove(namespace, webhook_id)
        self.secrets.forget(webhook)
        for delivery in list(self._deliveries.of_target(webhook.target)):
            with contextlib.suppress(Exception):  # best effort: records of a removed webhook are never read
                self._deliveries.remove(delivery)

    def last_delivery(self, webhook: Webhook) -> Delivery | None:
        return self._deliveries.latest(webhook.target)

    def deliveries(
        self, namespace: str, webhook_id: str, *, limit: int, continuation: str | None
    ) -> tuple[list[Delivery], str | None]:
        webhook = self._webhooks.get(namespace, webhook_id)
        return self._deliveries.page(webhook.target, limit=limit, continuation=continuation)
