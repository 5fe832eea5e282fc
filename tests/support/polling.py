"""Waiting in tests: the one poll loop, for a condition or for an API resource to leave a busy status."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import requests

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
