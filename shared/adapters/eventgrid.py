"""Azure Event Grid seam: publish CloudEvents to a topic. The real adapter uses ``azure-eventgrid``'s
``EventGridPublisherClient`` (built in ``shared/clients.py`` with the managed identity: the app's identity
holds EventGrid Data Sender on the topic); the in-memory twin records what was published, for tests.
No Event Grid emulator exists, so this seam is where the tests hold the publishing."""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridPublisherClient


class EventSink(Protocol):
    def publish(self, documents: list[str]) -> None:
        """Publish CloudEvents (JSON documents); raises when the topic did not accept them."""


class AzureEventGridSink:
    def __init__(self, client: EventGridPublisherClient) -> None:
        self._client = client

    def publish(self, documents: list[str]) -> None:
        self._client.send([CloudEvent.from_dict(json.loads(document)) for document in documents])


class MemoryEventGrid:
    """Records published events; ``fail_next`` makes the next publishes raise, as a topic that is down."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.fail_next = 0
        self._lock = threading.Lock()

    def publish(self, documents: list[str]) -> None:
        with self._lock:
            if self.fail_next:
                self.fail_next -= 1
                raise ConnectionError("the Event Grid topic did not answer")
            self.published.extend(json.loads(document) for document in documents)
