"""How full a work queue is, for the telemetry's gauges: its depth and when its oldest visible message was queued.
A queue that does not exist (a poison queue the host has not needed yet) is empty."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from azure.storage.queue import QueueClient

from shared.adapters.errors import StorageNotFound, translated


@dataclass(frozen=True)
class QueueMeasure:
    depth: int  # every message, visible or not (Queue Storage's approximate count)
    oldest_inserted_on: datetime | None  # the oldest visible message, the one a worker takes next; None: none waits


class QueueStats(Protocol):
    def measure(self) -> QueueMeasure:
        """Raises ``StorageFault`` when the queue cannot be read."""


class AzureQueueStats:
    def __init__(self, client: QueueClient) -> None:
        self._client = client

    def measure(self) -> QueueMeasure:
        try:
            with translated():
                depth = int(self._client.get_queue_properties().approximate_message_count or 0)
                oldest = self._client.peek_messages(max_messages=1) if depth else []
        except StorageNotFound:
            return QueueMeasure(0, None)
        return QueueMeasure(depth, oldest[0].inserted_on if oldest else None)
