"""Webhook secrets against real Azurite, as the development host keeps them (the local store: a blob container
of its own): rows written before secrets left the tables — the secret in plain text in their ``Secret``
column — are moved into the store on first use (a delivery, a read), once even when two workers move the same
row; a rotation signs with both secrets; and afterwards no secret is in any row of any table of the account."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from azure.data.tables import TableServiceClient
from standardwebhooks.webhooks import Webhook as StandardWebhook

from shared.adapters.cloudevents import encode
from shared.adapters.secrets.local import CONTAINER, LocalSecretStore
from shared.bootstrap import Services
from shared.config import Tables
from shared.domain.access import Principal
from shared.domain.events import DeliveryStatus, Event, EventType, event_id, secret_name_of
from tests.support.receiver import Receiver
from tests.support.restoring import Harness

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")
LEGACY = "whsec_" + "TGVnYWN5U2VjcmV0T2ZCZWZvcmUxMjM0NTY3ODkw"  # base64 of 30 bytes
ROTATED_OLD = "whsec_" + "T2xkU2VjcmV0QmVmb3JlUm90YXRpb24xMjM0NTY3"
ROTATED_NEW = "whsec_" + "TmV3U2VjcmV0QWZ0ZXJSb3RhdGlvbjEyMzQ1Njc4"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def legacy_row(table: TableServiceClient, namespace: str, webhook_id: str, url: str, secret: str, events: str) -> None:
    """A webhook as the code before this change wrote it: the secret itself in the ``Secret`` column."""
    now = datetime.now(UTC).isoformat()
    table.get_table_client(Tables.WEBHOOKS).create_entity(
        {
            "PartitionKey": namespace,
            "RowKey": webhook_id,
            "Url": url,
            "Events": events,
            "Secret": secret,
            "Description": "",
            "CreatedOn": now,
            "CreatedById": "ada",
            "CreatedByName": "Ada",
            "UpdatedOn": now,
        }
    )


def deliver_one(services: Services, namespace: str, webhook_id: str, occurrence: str, event_type: EventType) -> None:
    document = encode(
        Event(
            id=event_id(occurrence),
            type=event_type,
            source=f"/namespaces/{namespace}/environments/prod",
            subject="backups/b-1",
            time=datetime.now(UTC),
            namespace=namespace,
            data={"reason": "disk full"},
        )
    )
    assert services.deliveries.fan_out(document) == [f"{namespace}~{webhook_id}"]
    message = services.harness.queues["event-deliveries"].pop().body  # type: ignore[attr-defined]
    delivered = services.deliveries.deliver(message["target"], message["key"])
    assert delivered is not None
    assert delivered.status is DeliveryStatus.DELIVERED, delivered.attempts


def every_value_of_every_table(service: TableServiceClient) -> Iterator[tuple[str, str, str]]:
    """(table, property, text) for every text property of every row of every table of the account."""
    for table in service.list_tables():
        for entity in service.get_table_client(table.name).list_entities():
            for key, value in entity.items():
                yield table.name, key, str(value)


def test_plain_secrets_move_into_the_store_on_first_use_and_no_table_holds_a_secret(
    storage_services: Services, storage_connection_string: str, receiver: Receiver
) -> None:
    worker = Harness(storage_connection_string, APPBACKUPS_DEVELOPMENT_MODE="true").services
    other_worker = Harness(storage_connection_string, APPBACKUPS_DEVELOPMENT_MODE="true").services
    assert isinstance(worker.secrets, LocalSecretStore)
    tables = worker.clients.table_service
    namespace = f"sec-{uuid.uuid4().hex[:8]}"
    legacy_row(tables, namespace, "delivered", receiver.url, LEGACY, EventType.BACKUP_FAILED.value)
    legacy_row(tables, namespace, "read", receiver.url, LEGACY, EventType.RESTORE_FAILED.value)
    legacy_row(tables, namespace, "raced", receiver.url, LEGACY, EventType.RESTORE_FAILED.value)
    assert any(text == LEGACY for _, _, text in every_value_of_every_table(tables))  # the test can see one

    # Moved by its first delivery, which is signed with it.
    deliver_one(worker, namespace, "delivered", f"{namespace}/first", EventType.BACKUP_FAILED)
    [received] = receiver.events()
    StandardWebhook(LEGACY).verify(received.body, received.headers)
    moved = worker.webhooks.get(namespace, "delivered")
    assert moved.secret_name == secret_name_of(namespace, "delivered")
    assert worker.secrets.read(moved.secret_name, moved.signing_keys[0].version) == LEGACY

    # Moved by a read; the API still says only that it is set.
    read = worker.webhooks.get(namespace, "read")
    assert read.secret_set
    assert read.plain_secret == ""

    # Two workers find the same plain secret: one move wins, the other's copy is disabled.
    first = worker.webhooks._webhooks.get(namespace, "raced")
    second = other_worker.webhooks._webhooks.get(namespace, "raced")
    assert first.plain_secret == second.plain_secret == LEGACY
    won = worker.webhooks.secrets.moved(first)
    lost = other_worker.webhooks.secrets.moved(second)
    assert [key.version for key in lost.signing_keys] == [key.version for key in won.signing_keys]
    valid = worker.secrets.valid_versions(won.secret_name)
    assert [version.version for version in valid] == [won.signing_keys[0].version]

    # A rotation: during the grace period a delivery carries both signatures.
    worker.webhooks.put(
        namespace,
        "rotated",
        url=receiver.url,
        events=(EventType.BACKUP_FINISHED.value,),
        secret=ROTATED_OLD,
        description="",
        caller=ADA,
    )
    worker.webhooks.put(
        namespace,
        "rotated",
        url=receiver.url,
        events=(EventType.BACKUP_FINISHED.value,),
        secret=ROTATED_NEW,
        description="",
        caller=ADA,
    )
    deliver_one(worker, namespace, "rotated", f"{namespace}/second", EventType.BACKUP_FINISHED)
    both = receiver.events()[-1]
    assert len(both.headers["webhook-signature"].split(" ")) == 2
    StandardWebhook(ROTATED_OLD).verify(both.body, both.headers)
    StandardWebhook(ROTATED_NEW).verify(both.body, both.headers)

    # No secret, nor the key inside it, in any row of any table of the account.
    secrets = (LEGACY, ROTATED_OLD, ROTATED_NEW)
    keys = tuple(secret.removeprefix("whsec_") for secret in secrets)
    scanned = list(every_value_of_every_table(tables))
    assert any(table == Tables.WEBHOOKS and key == "SecretName" for table, key, _ in scanned)
    leaks = [(table, key) for table, key, text in scanned if any(part in text for part in secrets + keys)]
    assert leaks == []
    rows = tables.get_table_client(Tables.WEBHOOKS).query_entities(f"PartitionKey eq '{namespace}'")
    assert all("Secret" not in row for row in rows)
    # They are in the development host's own store: a blob container, not a table.
    container = worker.clients.blob_service.get_container_client(CONTAINER)
    assert {blob.name for blob in container.list_blobs(name_starts_with="webhook-")} >= {
        f"{secret_name_of(namespace, webhook_id)}.json" for webhook_id in ("delivered", "read", "raced", "rotated")
    }
