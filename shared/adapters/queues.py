"""Queue Storage seam: JSON work messages, base64-encoded as the Functions queue trigger expects.
``AzureWorkQueue`` and its twin ``MemoryWorkQueue`` are held to one behaviour by
tests/integration/test_work_queue_contract.py; a failed send raises ``StorageFault``."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from azure.storage.queue import QueueClient

from shared.adapters.errors import translated


class WorkQueue(Protocol):
    def send(self, message: dict[str, Any], *, delay_seconds: int = 0) -> None:
        """Queue ``message``, invisible for ``delay_seconds``. A queue that cannot take it raises ``StorageFault``."""


class AzureWorkQueue:
    def __init__(self, client: QueueClient) -> None:
        self._client = client

    def send(self, message: dict[str, Any], *, delay_seconds: int = 0) -> None:
        with translated():
            self._client.send_message(
                json.dumps(message, separators=(",", ":")).encode(), visibility_timeout=delay_seconds or None
            )


@dataclass(frozen=True)
class SentMessage:
    body: dict[str, Any]
    delay_seconds: int
    sent_at: float = 0.0  # time.monotonic() when sent

    @property
    def visible_at(self) -> float:
        return self.sent_at + self.delay_seconds


class MemoryWorkQueue:
    """Collects messages in the order they were sent, with their delays, for unit tests."""

    def __init__(self) -> None:
        self.sent: list[SentMessage] = []
        self._lock = threading.Lock()

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [message.body for message in self.sent]

    def send(self, message: dict[str, Any], *, delay_seconds: int = 0) -> None:
        with self._lock:
            self.sent.append(SentMessage(dict(message), delay_seconds, time.monotonic()))

    def pop(self) -> SentMessage:
        with self._lock:
            return self.sent.pop(0)

    def pop_next_visible(self) -> SentMessage | None:
        """The message the queue would deliver next (the soonest visible), taken out; None if empty."""
        with self._lock:
            if not self.sent:
                return None
            soonest = min(range(len(self.sent)), key=lambda index: self.sent[index].visible_at)
            return self.sent.pop(soonest)

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()


def decode_message(body: bytes) -> dict[str, Any]:
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("a work message is a JSON object")
    return document
