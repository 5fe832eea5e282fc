"""Webhook signing secrets in the secret store (the in-memory twin here; Key Vault in Azure): a webhook holds
only its secret's name and versions; a new secret signs beside the old one for the grace period, then alone,
and the old version is disabled; a plain-text secret of before moves into the store on first use, once even
when two workers find it at the same time; a secret that cannot be read fails the delivery with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from shared.adapters.cloudevents import encode
from shared.adapters.secrets import SecretNotFound, SecretStoreFault
from shared.adapters.secrets.keyvault import KeyVaultSecretStore
from shared.adapters.secrets.local import LocalSecretStore
from shared.adapters.secrets.memory import MemorySecretStore
from shared.adapters.webhooks import MemoryTransport, RecordedPost, signature_headers
from shared.bootstrap import Services, install_services, secret_store
from shared.clients import StorageClients
from shared.config import STORAGE_CONNECTION, Settings
from shared.domain.access import Permission, Principal
from shared.domain.backups import Actor
from shared.domain.events import DeliveryStatus, Event, EventType, Webhook, event_id, secret_name_of
from shared.errors import StaleRecord
from tests.support.functions import call
from tests.support.memory import ManualClock, memory_services
from tools.azurite import connection_string

ADA = Principal("ada-oid", "Ada")
ADA_ACTOR = Actor("ada-oid", "Ada")
OLD = "whsec_" + "A" * 32
NEW = "whsec_" + "B" * 32
NEWER = "whsec_" + "C" * 32
URL = "https://hooks.example.com/appbackups"


class World:
    def __init__(self, **settings: object) -> None:
        self.clock = ManualClock(datetime(2026, 10, 22, 2, 0, tzinfo=UTC))
        self.transport = MemoryTransport()
        self.services: Services = memory_services(self.clock, webhook_transport=self.transport, **settings)  # type: ignore[arg-type]
        self.sent = 0

    def put(self, secret: str | None, webhook_id: str = "ops") -> Webhook:
        webhook, _ = self.services.webhooks.put(
            "ns", webhook_id, url=URL, events=("*",), secret=secret, description="", caller=ADA
        )
        return webhook

    def deliver(self, webhook_id: str = "ops") -> RecordedPost:
        """One event, fanned out and delivered now; the post the receiver got."""
        self.sent += 1
        document = _event_document(self.clock.now, f"occurrence-{self.sent}")
        assert self.services.deliveries.fan_out(document) == [f"ns~{webhook_id}"]
        queue = self.services.deliveries._queue
        message = queue.sent.pop()
        delivered = self.services.deliveries.deliver(message.body["target"], message.body["key"])
        assert delivered is not None
        assert delivered.status is DeliveryStatus.DELIVERED, delivered.attempts
        return self.transport.posts[-1]


def _event_document(time: datetime, occurrence: str) -> str:
    return encode(
        Event(
            id=event_id(occurrence),
            type=EventType.BACKUP_FAILED,
            source="/namespaces/ns/environments/prod",
            subject="backups/b-1",
            time=time,
            namespace="ns",
            data={"reason": "disk full"},
        )
    )


def signed_with(post: RecordedPost, secret: str) -> bool:
    """Whether one of the post's signatures is the secret's (as a receiver checks it, without the 5-minute
    window on the timestamp that Standard Webhooks' verify adds: the tests move the clock by days)."""
    timestamp = datetime.fromtimestamp(int(post.headers["webhook-timestamp"]), tz=UTC)
    expected = StandardWebhook(secret).sign(post.headers["webhook-id"], timestamp, post.body.decode())
    return expected in post.headers["webhook-signature"].split(" ")


def test_a_webhook_holds_the_name_and_version_of_its_secret_never_the_secret() -> None:
    world = World()
    webhook = world.put(OLD)
    assert webhook.secret_name == secret_name_of("ns", "ops")
    [key] = webhook.signing_keys
    assert key.until is None
    assert webhook.plain_secret == ""
    assert OLD not in repr(webhook)
    assert world.services.secrets.read(webhook.secret_name, key.version) == OLD
    [stored] = world.services.secrets.valid_versions(webhook.secret_name)
    assert (stored.version, stored.tags["namespace"], stored.tags["webhook"]) == (key.version, "ns", "ops")
    post = world.deliver()
    assert signed_with(post, OLD)
    assert len(post.headers["webhook-signature"].split(" ")) == 1


def test_a_new_secret_signs_beside_the_old_one_for_the_grace_period_then_alone() -> None:
    world = World(webhook_secret_grace_hours=24)
    first = world.put(OLD)
    world.clock.advance(3600)
    rotated = world.put(NEW)
    [new_key, old_key] = rotated.signing_keys
    assert old_key.version == first.signing_keys[0].version
    assert (new_key.until, old_key.until) == (None, world.clock.now + timedelta(hours=24))
    # The store says so too: the old version expires when its grace period ends.
    store = world.services.secrets
    expiries = {version.version: version.expires_on for version in store.valid_versions(rotated.secret_name)}
    assert expiries == {new_key.version: None, old_key.version: world.clock.now + timedelta(hours=24)}

    during = world.deliver()
    assert signed_with(during, NEW)
    assert signed_with(during, OLD)
    assert not signed_with(during, NEWER)
    assert len(during.headers["webhook-signature"].split(" ")) == 2

    world.clock.advance(24 * 3600 + 1)
    after = world.deliver()
    assert signed_with(after, NEW)
    assert not signed_with(after, OLD)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    # The old version left the webhook and is disabled in the store.
    settled = world.services.webhooks.get("ns", "ops")
    assert [key.version for key in settled.signing_keys] == [new_key.version]
    with pytest.raises(SecretNotFound):
        store.read(settled.secret_name, old_key.version)
    assert [version.version for version in store.valid_versions(settled.secret_name)] == [new_key.version]


def test_two_rotations_within_the_grace_period_keep_each_old_secret_until_its_own_end() -> None:
    world = World(webhook_secret_grace_hours=10)
    world.put(OLD)
    world.clock.advance(3600)
    world.put(NEW)
    world.clock.advance(3600)
    twice = world.put(NEWER)
    assert [key.until for key in twice.signing_keys] == [
        None,
        world.clock.now + timedelta(hours=10),  # NEW, replaced now
        world.clock.now - timedelta(hours=1) + timedelta(hours=10),  # OLD, replaced an hour ago
    ]
    post = world.deliver()
    assert all(signed_with(post, secret) for secret in (OLD, NEW, NEWER))
    world.clock.advance(9 * 3600)  # OLD's grace is over, NEW's is not
    post = world.deliver()
    assert (signed_with(post, OLD), signed_with(post, NEW), signed_with(post, NEWER)) == (False, True, True)


def test_without_a_grace_period_the_new_secret_signs_alone_at_once() -> None:
    world = World(webhook_secret_grace_hours=0)
    first = world.put(OLD)
    rotated = world.put(NEW)
    assert len(rotated.signing_keys) == 1
    post = world.deliver()
    assert signed_with(post, NEW)
    assert not signed_with(post, OLD)
    with pytest.raises(SecretNotFound):
        world.services.secrets.read(first.secret_name, first.signing_keys[0].version)


def test_a_replacement_without_a_secret_or_with_the_same_one_keeps_the_version() -> None:
    world = World()
    first = world.put(OLD)
    assert world.put(None).signing_keys == first.signing_keys
    assert world.put(OLD).signing_keys == first.signing_keys
    assert len(world.services.secrets.valid_versions(first.secret_name)) == 1


def test_a_plain_text_secret_of_before_moves_into_the_store_on_first_delivery() -> None:
    world = World()
    catalog = world.services.webhooks._webhooks
    now = world.clock.now
    catalog.add(Webhook("ns", "ops", URL, ("*",), now, ADA_ACTOR, now, plain_secret=OLD))
    post = world.deliver()
    assert signed_with(post, OLD)
    moved = catalog.get("ns", "ops")
    assert moved.plain_secret == ""
    assert moved.secret_name == secret_name_of("ns", "ops")
    [key] = moved.signing_keys
    assert world.services.secrets.read(moved.secret_name, key.version) == OLD
    assert world.deliver().headers["webhook-signature"] == _signature_now(world, OLD)


def _signature_now(world: World, secret: str) -> str:
    post = world.transport.posts[-1]
    timestamp = datetime.fromtimestamp(int(post.headers["webhook-timestamp"]), tz=UTC)
    return signature_headers([secret], post.headers["webhook-id"], timestamp, post.body.decode())["webhook-signature"]


def test_a_plain_text_secret_is_moved_on_a_read_through_the_api_and_kept_by_a_replacement_without_one() -> None:
    world = World(development_mode=True)
    catalog = world.services.webhooks._webhooks
    now = world.clock.now
    catalog.add(Webhook("ns", "ops", URL, ("*",), now, ADA_ACTOR, now, plain_secret=OLD))
    install_services(world.services)
    try:
        status, _, document = call("get_webhook", "GET", "x", route={"ns": "ns", "webhookId": "ops"}, headers={})
    finally:
        install_services(None)
    assert (status, document["secretSet"]) == (200, True), document
    assert OLD not in str(document)
    read = catalog.get("ns", "ops")
    assert read.plain_secret == ""
    assert world.services.secrets.read(read.secret_name, read.signing_keys[0].version) == OLD
    replaced = world.put(None)
    assert replaced.signing_keys == read.signing_keys


def test_two_workers_moving_the_same_plain_secret_leave_one_valid_version() -> None:
    world = World()
    catalog = world.services.webhooks._webhooks
    secrets = world.services.webhooks.secrets
    now = world.clock.now
    catalog.add(Webhook("ns", "ops", URL, ("*",), now, ADA_ACTOR, now, plain_secret=OLD))
    first, second = catalog.get("ns", "ops"), catalog.get("ns", "ops")  # both read it before either moved it
    won = secrets.moved(first)
    lost = secrets.moved(second)  # its write finds the row changed: it takes the row as it is now
    assert lost == won
    [valid] = world.services.secrets.valid_versions(won.secret_name)
    assert [valid.version] == [key.version for key in won.signing_keys]
    assert len(world.services.secrets.values()) == 2  # the loser's copy exists, disabled


def test_a_secret_disabled_by_hand_fails_the_delivery_with_a_reason_until_a_new_one_is_given() -> None:
    world = World(webhook_retry_seconds=(5,))
    webhook = world.put(OLD)
    world.services.secrets.disable(webhook.secret_name, webhook.signing_keys[0].version)
    document = _event_document(world.clock.now, "occurrence-disabled")
    world.services.deliveries.fan_out(document)
    message = world.services.deliveries._queue.sent.pop()
    delivered = world.services.deliveries.deliver(message.body["target"], message.body["key"])
    assert delivered is not None
    assert delivered.status is DeliveryStatus.PENDING
    assert "cannot be read from the secret store" in delivered.attempts[-1].error
    assert world.transport.posts == []
    world.put(NEW)
    world.clock.advance(5)
    again = world.services.deliveries.deliver(message.body["target"], message.body["key"])
    assert again is not None
    assert again.status is DeliveryStatus.DELIVERED
    assert signed_with(world.transport.posts[-1], NEW)


def test_a_failed_save_disables_the_version_it_stored() -> None:
    world = World()
    first = world.put(OLD)
    secrets = world.services.webhooks.secrets
    stale = world.services.webhooks.get("ns", "ops")
    world.put(None)  # another request changed the row meanwhile
    attempted = secrets.with_new_secret(stale, NEW)
    with pytest.raises(StaleRecord):
        world.services.webhooks._webhooks.save(attempted)
    secrets.abandon(stale, attempted)
    assert [v.version for v in world.services.secrets.valid_versions(first.secret_name)] == [
        first.signing_keys[0].version
    ]


def test_removing_a_webhook_disables_every_version_of_its_secret() -> None:
    world = World()
    world.put(OLD)
    webhook = world.put(NEW)
    assert len(world.services.secrets.valid_versions(webhook.secret_name)) == 2
    world.services.webhooks.remove("ns", "ops")
    assert world.services.secrets.valid_versions(webhook.secret_name) == []


def test_in_azure_without_a_key_vault_no_secret_is_kept_anywhere() -> None:
    world = World(running_in_azure=True, easy_auth_enabled=True)
    with pytest.raises(SecretStoreFault, match="APPBACKUPS_KEY_VAULT_URL is not set"):
        world.put(OLD)
    world.services.access.grant("ns", "admin-oid", frozenset({Permission.NAMESPACE_ADMIN}), "Admin", ADA)
    install_services(world.services)
    try:
        status, _, document = call(
            "put_webhook",
            "PUT",
            "x",
            route={"ns": "ns", "webhookId": "ops"},
            body={"url": URL, "events": ["*"], "secret": OLD},
            headers={"X-MS-CLIENT-PRINCIPAL-ID": "admin-oid", "X-MS-CLIENT-PRINCIPAL-NAME": "Admin"},
        )
    finally:
        install_services(None)
    assert (status, document["code"]) == (503, "storage_unavailable"), document
    assert world.services.webhooks.of_namespace("ns") == []


def test_secret_names_fit_key_vault_whatever_the_namespace_and_id() -> None:
    longest = "a" * 63
    names = {
        secret_name_of(namespace, webhook_id)
        for namespace, webhook_id in [(longest, longest), ("a-b", "c"), ("a", "b-c")]
    }
    assert len(names) == 3
    assert all(len(name) <= 127 and name.replace("-", "").isalnum() for name in names)


def test_a_signature_header_has_one_entry_per_secret() -> None:
    at = datetime(2026, 10, 22, tzinfo=UTC)
    headers = signature_headers([OLD, NEW], "msg-1", at, "{}")
    assert headers["webhook-signature"].split(" ") == [
        StandardWebhook(OLD).sign("msg-1", at, "{}"),
        StandardWebhook(NEW).sign("msg-1", at, "{}"),
    ]
    with pytest.raises(ValueError, match="at least one secret"):
        signature_headers([], "msg-1", at, "{}")


# -- where the secrets are kept, by the settings ----------------------------------------------------------


def _settings(**environ: str) -> Settings:
    return Settings.from_environ({STORAGE_CONNECTION: connection_string(1, 1, 1), **environ})


def test_the_settings_choose_the_store() -> None:
    clients = StorageClients(_settings().storage)
    vault = _settings(APPBACKUPS_KEY_VAULT_URL="https://kv-appbackups.vault.azure.net/")
    chosen = secret_store(vault, clients, ManualClock(), in_memory=True)
    assert isinstance(chosen, KeyVaultSecretStore)
    assert chosen.vault_url == "https://kv-appbackups.vault.azure.net"
    assert isinstance(secret_store(_settings(), clients, ManualClock(), in_memory=False), LocalSecretStore)
    assert isinstance(secret_store(_settings(), clients, ManualClock(), in_memory=True), MemorySecretStore)
    in_azure = secret_store(_settings(WEBSITE_INSTANCE_ID="abc"), clients, ManualClock(), in_memory=False)
    with pytest.raises(SecretStoreFault, match="APPBACKUPS_KEY_VAULT_URL is not set"):
        in_azure.store("webhook-a", OLD)


def test_the_key_vault_url_and_the_grace_period_are_checked() -> None:
    assert _settings().webhook_secret_grace_hours == 24
    assert _settings(APPBACKUPS_KEY_VAULT_URL="  ").key_vault_url is None  # blank: unset
    with pytest.raises(ValueError, match="APPBACKUPS_KEY_VAULT_URL"):
        _settings(APPBACKUPS_KEY_VAULT_URL="http://kv.vault.azure.net")
    with pytest.raises(ValueError, match="APPBACKUPS_WEBHOOK_SECRET_GRACE_HOURS must be at least 0"):
        _settings(APPBACKUPS_WEBHOOK_SECRET_GRACE_HOURS="-1")


class FlakyStore:
    """The twin, unreachable while ``down``."""

    def __init__(self, inner: MemorySecretStore) -> None:
        self.inner = inner
        self.down = False

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        if self.down:
            raise SecretStoreFault("the vault is unreachable (a test's outage)")
        return getattr(self.inner, name)


def test_a_read_while_the_store_is_down_shows_the_webhook_and_a_later_use_moves_its_secret() -> None:
    world = World()
    catalog = world.services.webhooks._webhooks
    now = world.clock.now
    catalog.add(Webhook("ns", "ops", URL, ("*",), now, ADA_ACTOR, now, plain_secret=OLD))
    flaky = FlakyStore(world.services.secrets)  # type: ignore[arg-type]
    world.services.webhooks.secrets._store = flaky  # type: ignore[assignment]
    flaky.down = True
    [listed] = world.services.webhooks.of_namespace("ns")
    assert listed.secret_set
    assert catalog.get("ns", "ops").plain_secret == OLD  # not moved yet
    with pytest.raises(SecretStoreFault):
        world.put(NEW)  # a write needs the store
    flaky.down = False
    assert signed_with(world.deliver(), OLD)
    assert catalog.get("ns", "ops").plain_secret == ""
