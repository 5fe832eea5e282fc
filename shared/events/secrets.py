"""The signing secrets of webhooks, kept in the secret store (Key Vault in Azure), never in a table: a webhook's
row holds the secret's name and the versions that sign. A new secret is a new version; the version it replaces
goes on signing beside it for the grace period (Standard Webhooks allows several signatures), then only the
new one signs and the old one is disabled. A row of before, with the secret in plain text, is moved into the
store on its first use, by an ETag-checked write, so that of two workers moving it at once one wins and the
other's copy is disabled."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import timedelta

from shared.adapters.errors import StorageFault
from shared.adapters.secrets import SecretNotFound, SecretStore
from shared.catalog.events import WebhookCatalog
from shared.clock import Clock
from shared.domain.events import SigningKey, Webhook, secret_name_of
from shared.errors import NotFound, StaleRecord
from shared.faults import Fault

logger = logging.getLogger("appbackups.events")

_MOVE_ATTEMPTS = 4
_CACHED_VALUES = 1024  # a version's value never changes: read once per process (a few per webhook)


class SecretMissing(Fault):
    """The current version of a webhook's secret cannot be read from the secret store (disabled or deleted by
    hand): its deliveries cannot be signed until the webhook is given a new secret."""

    transient = True


class WebhookSecrets:
    def __init__(self, store: SecretStore, webhooks: WebhookCatalog, clock: Clock, grace: timedelta) -> None:
        self._store = store
        self._webhooks = webhooks
        self._clock = clock
        self.grace = grace
        self._values: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------------------

    def _value(self, name: str, version: str) -> str:
        with self._lock:
            value = self._values.get((name, version))
        if value is None:
            value = self._store.read(name, version)
            with self._lock:
                if len(self._values) >= _CACHED_VALUES:
                    self._values.clear()
                self._values[(name, version)] = value
        return value

    def signing_secrets(self, webhook: Webhook) -> list[str]:
        """The secrets a delivery to the webhook is signed with now: its current one, and those a new secret
        replaced less than the grace period ago. A plain-text secret is moved into the store first; replaced
        versions whose grace period is over leave the row and are disabled."""
        webhook = self.moved(webhook)
        now = self._clock()
        if any(not key.valid_at(now) for key in webhook.signing_keys):
            self._retire_expired(webhook)
        valid = [key for key in webhook.signing_keys if key.valid_at(now)]
        if not valid or valid[0].until is not None:
            raise SecretMissing(f"Webhook {webhook.id} has no current signing secret; give it a new one.")
        secrets = []
        for key in valid:
            try:
                secrets.append(self._value(webhook.secret_name, key.version))
            except SecretNotFound as error:
                if key.until is None:
                    raise SecretMissing(
                        f"The signing secret of webhook {webhook.id} cannot be read from the secret store ({error}); "
                        "give the webhook a new secret."
                    ) from error
                logger.warning("webhook %s: a replaced secret is gone before its grace period ended", webhook.id)
        return secrets

    # -- moving a plain-text secret --------------------------------------------------------------------

    def moved_if_possible(self, webhook: Webhook) -> Webhook:
        """``moved`` for a read: when the store or the table cannot take the move now, the webhook as it is (its
        next use tries again); a read never fails for it."""
        try:
            return self.moved(webhook)
        except (StorageFault, StaleRecord):
            logger.warning("webhook %s: its plain-text secret could not be moved now", webhook.id, exc_info=True)
            return webhook

    def moved(self, webhook: Webhook) -> Webhook:
        """The webhook with its secret in the store: a row that still holds it in plain text is rewritten
        without it (ETag-checked). When another worker moved (or changed) the row first, this copy is disabled
        and the row as it is now is taken."""
        for _ in range(_MOVE_ATTEMPTS):
            if not webhook.plain_secret:
                return webhook
            name = secret_name_of(webhook.namespace, webhook.id)
            version = self._store.store(name, webhook.plain_secret, tags=_tags(webhook))
            try:
                saved = self._webhooks.save(
                    replace(webhook, secret_name=name, signing_keys=(SigningKey(version),), plain_secret="")
                )
            except StaleRecord:
                self._disable(name, version)
                current = self._webhooks.find(webhook.namespace, webhook.id)
                if current is None:
                    raise NotFound(
                        f"Namespace {webhook.namespace!r} has no webhook {webhook.id!r}.", code="webhook_not_found"
                    ) from None
                webhook = current
                continue
            logger.info(
                "webhook %s/%s: its plain-text secret moved into the secret store", webhook.namespace, webhook.id
            )
            return saved
        raise StaleRecord(f"Webhook {webhook.id} kept changing while its secret was being moved; try again.")

    # -- writing -------------------------------------------------------------------------------------

    def with_new_secret(self, webhook: Webhook, secret: str) -> Webhook:
        """The webhook signing with ``secret`` from now on, kept as a new version of its secret (nothing changes
        when it is the current one already). The version it replaces keeps signing until the grace period ends.
        Save the result, then call ``settle`` (or ``abandon`` when the save failed)."""
        name = webhook.secret_name or secret_name_of(webhook.namespace, webhook.id)
        current = webhook.signing_keys[0] if webhook.signing_keys and webhook.signing_keys[0].until is None else None
        if current is not None and self._current_value(name, current.version) == secret:
            return webhook
        version = self._store.store(name, secret, tags=_tags(webhook))
        now = self._clock()
        until = now + self.grace
        replaced = (replace(key, until=key.until or until) for key in webhook.signing_keys)
        kept = tuple(key for key in replaced if key.valid_at(now))
        return replace(webhook, secret_name=name, signing_keys=(SigningKey(version), *kept), plain_secret="")

    def _current_value(self, name: str, version: str) -> str | None:
        try:
            return self._value(name, version)
        except SecretNotFound:
            return None

    def settle(self, before: Webhook | None, after: Webhook) -> None:
        """After ``after`` was saved: the store follows the row. Versions it replaced expire at the end of their
        grace period; versions it no longer holds are disabled. Best effort: the row alone decides what signs."""
        if before is None or not before.secret_name:
            return
        now_held = {key.version: key for key in after.signing_keys}
        for key in before.signing_keys:
            held = now_held.get(key.version)
            if held is None:
                self._disable(before.secret_name, key.version)
            elif held.until is not None and held.until != key.until:
                try:
                    self._store.expire(before.secret_name, key.version, held.until)
                except Exception:  # the row decides; the vault's expiry is for the people who look at it
                    logger.warning("webhook %s: could not set the expiry of a replaced secret", after.id, exc_info=True)

    def abandon(self, before: Webhook | None, attempted: Webhook) -> None:
        """``attempted`` was not saved: disable the versions it added."""
        held = {key.version for key in before.signing_keys} if before else set()
        for key in attempted.signing_keys:
            if key.version not in held:
                self._disable(attempted.secret_name, key.version)

    def forget(self, webhook: Webhook) -> None:
        """The webhook was removed: disable every version of its secret still valid, the row's and any a
        crashed write left behind."""
        name = webhook.secret_name or secret_name_of(webhook.namespace, webhook.id)
        try:
            versions = self._store.valid_versions(name)
        except Exception:
            logger.warning("webhook %s removed: could not list its secret's versions to disable them", webhook.id)
            return
        for version in versions:
            self._disable(name, version.version)

    def _retire_expired(self, webhook: Webhook) -> None:
        now = self._clock()
        try:
            self._webhooks.update(
                webhook.namespace,
                webhook.id,
                lambda current: replace(
                    current, signing_keys=tuple(key for key in current.signing_keys if key.valid_at(now))
                ),
            )
        except Exception:  # busy or unreachable: the next delivery tries again; expired versions never sign meanwhile
            logger.warning(
                "webhook %s: could not drop the secrets whose grace period is over", webhook.id, exc_info=True
            )
            return
        for key in webhook.signing_keys:
            if not key.valid_at(now):
                self._disable(webhook.secret_name, key.version)

    def _disable(self, name: str, version: str) -> None:
        with self._lock:
            self._values.pop((name, version), None)
        try:
            self._store.disable(name, version)
        except SecretNotFound:
            pass
        except Exception:
            logger.warning("could not disable version %s of the secret %s", version, name, exc_info=True)


def _tags(webhook: Webhook) -> dict[str, str]:
    """Where the secret belongs, for the people who look at the vault (never a secret)."""
    return {"namespace": webhook.namespace, "webhook": webhook.id, "purpose": "webhook-signing"}
