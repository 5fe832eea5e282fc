"""Queue Storage seam: JSON work messages, base64-encoded as the Functions queue trigger expects."""

from __future__ import annotations

import json
from typing import Any, Protocol

from azure.storage.queue import QueueClient


class WorkQueue(Protocol):
    def send(self, message: dict[str, Any], *, delay_seconds: int = 0) -> None: ...


class AzureWorkQueue:
    def __init__(self, client: QueueClient) -> None:
        self._client = client

    def send(self, message: dict[str, Any], *, delay_seconds: int = 0) -> None:
        self._client.send_message(
            json.dumps(message, separators=(",", ":")).encode(), visibility_timeout=delay_seconds or None
        )


class MemoryWorkQueue:
    """Collects messages, for unit tests."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any], *, delay_seconds: int = 0) -> None:
        self.messages.append(message)


def decode_message(body: bytes) -> dict[str, Any]:
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("a work message is a JSON object")
    return document
