"""Waiting in tests: the one poll loop, for a condition or for an API resource to leave a busy status."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import requests

from shared.clients import StorageClients
from shared.config import Queues

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, interval: float = 0.05, what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy, and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(interval)


def wait_for_status(
    url: str,
    busy: str | Iterable[str] = ("Processing", "Running", "Stalled"),
    *,
    field: str = "status",
    timeout: float = 120,
    interval: float = 0.3,
    **params: Any,
) -> dict[str, Any]:
    """GET ``url`` until its ``field`` is no longer one of ``busy``; the document it ended with."""
    waiting = {busy} if isinstance(busy, str) else set(busy)
    last: dict[str, Any] = {}

    def settled() -> dict[str, Any] | None:
        nonlocal last
        last = requests.get(url, params=params or None, timeout=30).json()
        return None if last[field] in waiting else last

    try:
        return wait_for(settled, timeout, interval, what=f"{url} leaving {sorted(waiting)}")
    except AssertionError as error:
        raise AssertionError(f"{error}: {last}") from None


def wait_for_empty_queues(clients: StorageClients, names: tuple[str, ...], timeout: float = 60) -> None:
    """Wait until the queues hold no message, invisible ones included (a message being handled, a delayed
    retry): the host has nothing of that work left to do, so what it sends is all there will be. Two
    readings in a row, so that a message handed on from one queue to the next between them is seen."""
    queues = [clients.queue(name) for name in names]

    def empty() -> bool:
        return all(queue.get_queue_properties().approximate_message_count == 0 for queue in queues)

    wait_for(lambda: empty() and empty(), timeout, interval=0.2, what=f"queues {sorted(names)} empty")


def wait_for_delivered_events(clients: StorageClients, timeout: float = 60) -> None:
    """No event is waiting in the outbox or for a delivery (a retry's back-off included)."""
    wait_for_empty_queues(clients, (Queues.EVENTS, Queues.DELIVERIES), timeout)
