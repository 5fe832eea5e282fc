"""The in-memory work queue must behave like Queue Storage (Azurite) as the engine uses it: a message
comes back as it was sent, and a delayed one stays invisible for its delay while others are delivered."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.storage.queue import BinaryBase64EncodePolicy, QueueClient

from shared.adapters.errors import StorageFault, StorageNotFound
from shared.adapters.queues import AzureWorkQueue, MemoryWorkQueue, WorkQueue, decode_message
from shared.clients import StorageClients
from shared.config import StorageConnection
from shared.faults import is_transient
from tools.azurite import connection_string

pytestmark = pytest.mark.integration


class MemoryReader:
    """Receives from a MemoryWorkQueue as a worker would, on a clock the test moves."""

    def __init__(self, queue: MemoryWorkQueue) -> None:
        self.queue = queue
        self.waited = 0.0

    def receive(self) -> list[dict[str, Any]]:
        now = time.monotonic() + self.waited
        visible = [message for message in self.queue.sent if message.visible_at <= now]
        for message in visible:
            self.queue.sent.remove(message)
        return [message.body for message in visible]

    def wait(self, seconds: float) -> None:
        self.waited += seconds


class AzuriteReader:
    """Receives from Azurite as the host's queue trigger does (base64 bodies), deleting what it got."""

    def __init__(self, client: QueueClient) -> None:
        self.client = client

    def receive(self) -> list[dict[str, Any]]:
        bodies = []
        for message in self.client.receive_messages(messages_per_page=32, visibility_timeout=30):
            bodies.append(decode_message(message.content))
            self.client.delete_message(message)
        return bodies

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)


@pytest.fixture(params=["memory", "azurite"])
def queue_and_reader(request: pytest.FixtureRequest) -> Iterator[tuple[WorkQueue, MemoryReader | AzuriteReader]]:
    if request.param == "memory":
        queue = MemoryWorkQueue()
        yield queue, MemoryReader(queue)
        return
    clients = StorageClients(StorageConnection(connection_string=request.getfixturevalue("storage_connection_string")))
    client = clients.queue("q" + uuid.uuid4().hex[:12])  # the production client: its codec and retries
    client.create_queue()
    yield AzureWorkQueue(client), AzuriteReader(client)
    client.delete_queue()


def test_a_message_comes_back_as_it_was_sent(queue_and_reader) -> None:
    queue, reader = queue_and_reader
    message = {"kind": "operation", "operationId": "o-1", "attempt": 2, "nested": {"ü": [1, None, True]}}
    queue.send(message)
    assert reader.receive() == [message]
    assert reader.receive() == []


def test_a_delayed_message_stays_invisible_for_its_delay(queue_and_reader) -> None:
    queue, reader = queue_and_reader
    queue.send({"id": "later"}, delay_seconds=1)
    queue.send({"id": "now"})
    assert reader.receive() == [{"id": "now"}]
    reader.wait(1.5)
    assert reader.receive() == [{"id": "later"}]


def test_the_azure_queue_translates_what_the_service_refuses(storage_connection_string: str) -> None:
    clients = StorageClients(StorageConnection(connection_string=storage_connection_string))
    missing = clients.queue("missing-" + uuid.uuid4().hex[:8])
    with pytest.raises(StorageNotFound) as refused:
        AzureWorkQueue(missing).send({"id": "x"})
    assert not is_transient(refused.value)
    nothing_listens = QueueClient.from_connection_string(
        connection_string(1, 1, 1), "q", message_encode_policy=BinaryBase64EncodePolicy(), retry_total=0
    )
    with pytest.raises(StorageFault) as down:
        AzureWorkQueue(nothing_listens).send({"id": "x"})
    assert is_transient(down.value)
    assert down.value.error_type == "ServiceRequestError"
