"""The secret stores behave alike for everything the webhooks rely on: the in-memory twin, the local store of
the development host (a blob container of Azurite) and the Key Vault adapter. No Key Vault exists on this
machine: the Key Vault adapter runs its real SDK client against ``tests/support/keyvault.py``'s fake of the
vault's REST API at the transport seam — a fake written from the REST reference, not the service itself."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import BlobServiceClient

from shared.adapters.secrets import SecretNotFound, SecretStore, SecretStoreFault
from shared.adapters.secrets.keyvault import KeyVaultSecretStore
from shared.adapters.secrets.local import LocalSecretStore
from shared.adapters.secrets.memory import MemorySecretStore
from shared.clients import key_vault_secrets
from tests.support.keyvault import PAGE, FakeCredential, FakeKeyVault
from tests.support.memory import ManualClock

pytestmark = pytest.mark.integration

START = datetime(2026, 10, 22, 2, 0, 0, tzinfo=UTC)
VALUE = "whsec_" + "Q" * 32


class Subject:
    def __init__(self, store: SecretStore, clock: ManualClock, vault: FakeKeyVault | None = None) -> None:
        self.store = store
        self.clock = clock
        self.vault = vault


@pytest.fixture(params=["memory", "local", "keyvault"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    clock = ManualClock(START)
    if request.param == "memory":
        yield Subject(MemorySecretStore(clock), clock)
        return
    if request.param == "local":
        service = BlobServiceClient.from_connection_string(request.getfixturevalue("storage_connection_string"))
        container = service.get_container_client("secrets-" + uuid.uuid4().hex[:12])  # made by the first write
        yield Subject(LocalSecretStore(container, clock), clock)
        container.delete_container()
        return
    vault = FakeKeyVault(clock=clock)
    client = key_vault_secrets(vault.vault_url, FakeCredential(), transport=vault.transport())
    yield Subject(KeyVaultSecretStore(client, clock), clock, vault)


def name() -> str:
    return "webhook-" + uuid.uuid4().hex


def test_a_stored_value_reads_back_by_its_version(subject: Subject) -> None:
    secret = name()
    first = subject.store.store(secret, VALUE, tags={"namespace": "ns", "webhook": "ops"})
    second = subject.store.store(secret, "whsec_ünïcode " + "x" * 2000)
    assert first != second
    assert subject.store.read(secret, first) == VALUE
    assert subject.store.read(secret, second) == "whsec_ünïcode " + "x" * 2000
    versions = {version.version: version for version in subject.store.valid_versions(secret)}
    assert set(versions) == {first, second}
    assert versions[first].name == secret
    assert versions[first].created_on == START
    assert versions[first].enabled is True
    assert versions[first].expires_on is None
    assert dict(versions[first].tags) == {"namespace": "ns", "webhook": "ops"}
    assert dict(versions[second].tags) == {}


def test_what_is_not_there_is_not_found(subject: Subject) -> None:
    secret = name()
    assert subject.store.valid_versions(secret) == []
    with pytest.raises(SecretNotFound):
        subject.store.read(secret, uuid.uuid4().hex)
    version = subject.store.store(secret, VALUE)
    with pytest.raises(SecretNotFound):
        subject.store.read(secret, uuid.uuid4().hex)
    with pytest.raises(SecretNotFound):
        subject.store.read(name(), version)  # a version of another secret
    with pytest.raises(SecretNotFound):
        subject.store.expire(secret, uuid.uuid4().hex, START)
    with pytest.raises(SecretNotFound):
        subject.store.disable(name(), version)


def test_an_expired_version_is_no_longer_valid(subject: Subject) -> None:
    secret = name()
    old = subject.store.store(secret, "old")
    new = subject.store.store(secret, "new")
    subject.store.expire(secret, old, START + timedelta(hours=24, microseconds=500))  # kept to the second
    [listed] = [version for version in subject.store.valid_versions(secret) if version.version == old]
    assert listed.expires_on == START + timedelta(hours=24)
    subject.clock.advance(24 * 3600 - 1)
    assert {version.version for version in subject.store.valid_versions(secret)} == {old, new}
    subject.clock.advance(1)
    assert {version.version for version in subject.store.valid_versions(secret)} == {new}
    subject.store.expire(secret, new, START)  # in the past: at once
    assert subject.store.valid_versions(secret) == []


def test_a_disabled_version_is_neither_valid_nor_readable(subject: Subject) -> None:
    secret = name()
    old = subject.store.store(secret, "old")
    new = subject.store.store(secret, "new")
    subject.store.disable(secret, old)
    subject.store.disable(secret, old)  # twice is no error
    with pytest.raises(SecretNotFound):
        subject.store.read(secret, old)
    assert [version.version for version in subject.store.valid_versions(secret)] == [new]
    assert subject.store.read(secret, new) == "new"


def test_many_versions_are_all_listed(subject: Subject) -> None:
    secret = name()
    stored = {subject.store.store(secret, f"value {index}") for index in range(PAGE + 6)}  # over a vault's page
    assert {version.version for version in subject.store.valid_versions(secret)} == stored


def test_concurrent_writers_lose_no_version(subject: Subject) -> None:
    secret = name()
    stored: list[str] = []
    lock = threading.Lock()

    def write(index: int) -> None:
        version = subject.store.store(secret, f"value {index}")
        with lock:
            stored.append(version)

    threads = [threading.Thread(target=write, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {version.version for version in subject.store.valid_versions(secret)} == set(stored)
    assert sorted(subject.store.read(secret, version) for version in stored) == [f"value {i}" for i in range(6)]


def test_names_are_held_to_key_vaults_rules(subject: Subject) -> None:
    for bad in ("", "under_score", "dot.ted", "x" * 128, "slash/ed"):
        with pytest.raises(ValueError, match="not a secret name"):
            subject.store.store(bad, VALUE)
    subject.store.store("A-" + "x" * 125, VALUE)  # 127: the longest


# -- the Key Vault adapter's own: what it sends, and how it fails ------------------------------------------


@pytest.fixture
def vault() -> tuple[FakeKeyVault, FakeCredential, KeyVaultSecretStore]:
    fake = FakeKeyVault()
    credential = FakeCredential()
    return (
        fake,
        credential,
        KeyVaultSecretStore(key_vault_secrets(fake.vault_url, credential, transport=fake.transport())),
    )


def test_the_adapter_makes_only_the_four_calls_signed_in_for_the_vault(vault) -> None:  # type: ignore[no-untyped-def]
    fake, credential, store = vault
    version = store.store("webhook-a", VALUE)
    store.read("webhook-a", version)
    store.valid_versions("webhook-a")
    store.expire("webhook-a", version, START)
    store.disable("webhook-a", version)
    assert fake.requests == [
        ("PUT", "/secrets/webhook-a"),
        ("GET", f"/secrets/webhook-a/{version}"),
        ("GET", "/secrets/webhook-a/versions"),
        ("PATCH", f"/secrets/webhook-a/{version}"),
        ("PATCH", f"/secrets/webhook-a/{version}"),
    ]
    assert set(credential.scopes) == {("https://vault.azure.net/.default",)}
    assert fake.values() == [VALUE]


def test_a_passing_outage_is_retried_and_a_refusal_is_a_fault(vault) -> None:  # type: ignore[no-untyped-def]
    fake, _, store = vault
    fake.fail_next = [503]
    version = store.store("webhook-a", VALUE)  # the SDK's retry sends it again
    assert store.read("webhook-a", version) == VALUE
    fake.fail_next = [403]  # e.g. the identity lacks its role on the vault
    with pytest.raises(SecretStoreFault, match="Key Vault failed"):
        store.read("webhook-a", version)
