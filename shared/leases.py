"""A claim on a catalog record (a snapshot being made, an operation step being run), kept alive
from a background thread. Every write is ETag-guarded, so once another worker takes the record
over — or it is deleted — this worker learns it has lost the lease and stops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from azure.core.exceptions import AzureError

from shared.clock import Clock
from shared.errors import AppError

T = TypeVar("T")

logger = logging.getLogger("appbackups.leases")


class LeaseLost(Exception):
    """Another worker took the record over (or it was deleted) while this one worked on it."""


class Lease(Generic[T]):
    def __init__(
        self,
        record: T,
        *,
        save: Callable[[T], T],
        extend: Callable[[T, datetime], T],
        duration: timedelta,
        clock: Clock,
        label: str,
    ) -> None:
        self._save = save
        self._extend = extend
        self._duration = duration
        self._clock = clock
        self._label = label
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._pending: Callable[[T], T] | None = None
        self._lost = False
        self.record = record
        self._thread = threading.Thread(target=self._renew_until_stopped, name=f"lease-{label}", daemon=True)

    def __enter__(self) -> Lease[T]:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def lost(self) -> bool:
        return self._lost

    def check(self) -> None:
        if self._lost:
            raise LeaseLost(self._label)

    def publish(self, change: Callable[[T], T]) -> None:
        """Apply ``change`` (e.g. progress) with the next renewal; a newer change replaces it."""
        with self._lock:
            self._pending = change

    def _renew_until_stopped(self) -> None:
        interval = self._duration.total_seconds() / 4
        while not self._stop.wait(interval):
            try:
                self.commit(lambda record: record)
            except LeaseLost:
                return
            except AzureError:
                logger.warning("renewing the lease on %s failed; trying again", self._label)

    def commit(self, change: Callable[[T], T], *, release: bool = False) -> T:
        """Write ``change`` now, together with any published change, extending the lease unless
        ``release`` (the last write: renewals stop)."""
        with self._lock:
            if self._lost:
                raise LeaseLost(self._label)
            record = self.record
            if self._pending is not None:
                record = self._pending(record)
            record = change(record)
            if not release:
                record = self._extend(record, self._clock() + self._duration)
            try:
                self.record = self._save(record)
            except AppError as error:
                self._lost = True
                raise LeaseLost(self._label) from error
            self._pending = None
            if release:
                self._stop.set()
            return self.record
