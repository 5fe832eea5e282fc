"""A worker's claim on an operation, kept alive from a background thread.

Every write is ETag-guarded. Another writer may change the row while the worker holds it — a cancel
request does — so a write that finds the row changed reads it again and, as long as the lease is
still this worker's (same token), applies its change to what it read. When the row names another
owner, or the worker could not check in before its lease ran out, the lease is lost and the worker
stops at its next check. Each renewal is the worker's heartbeat."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from shared.catalog.operations import OperationCatalog
from shared.clock import Clock
from shared.domain.operations import Operation
from shared.errors import StaleRecord

logger = logging.getLogger("appbackups.operations")

_MERGE_ATTEMPTS = 8


class LeaseLost(Exception):
    """Another worker took the operation over while this one worked on it (or the row is gone)."""


class CancelRequested(Exception):
    """Somebody asked to cancel the operation; the running step stops."""


class OperationLease:
    def __init__(self, record: Operation, catalog: OperationCatalog, duration: timedelta, clock: Clock) -> None:
        self._catalog = catalog
        self._duration = duration
        self._clock = clock
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._pending: Callable[[Operation], Operation] | None = None
        self._lost = False
        self.token = str(record.lease_owner)
        self.record = record
        self._thread = threading.Thread(target=self._renew_until_stopped, name=f"lease-{record.id[:8]}", daemon=True)

    def __enter__(self) -> OperationLease:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def lost(self) -> bool:
        return self._lost

    @property
    def cancel_requested(self) -> bool:
        """A cancel was asked for, the operation has not passed its point of no return, and it is not
        undoing already."""
        record = self.record
        return record.cancel_requested_by is not None and not record.no_return and record.ending is None

    def check(self) -> None:
        if self._lost:
            raise LeaseLost(self.record.id)
        if self.cancel_requested:
            raise CancelRequested(self.record.id)

    def publish(self, change: Callable[[Operation], Operation]) -> None:
        """Apply ``change`` (progress) with the next renewal; a newer change replaces it."""
        with self._lock:
            self._pending = change

    def _renew_until_stopped(self) -> None:
        interval = self._duration.total_seconds() / 4
        while not self._stop.wait(interval):
            try:
                self.commit(lambda record: record)
            except LeaseLost:
                return
            except Exception as error:  # storage unreachable: try again, but never past the lease
                until = self.record.lease_until
                if until is not None and self._clock() >= until:
                    logger.warning("operation %s: could not check in before the lease ran out; stopping", self.token)
                    self._lost = True
                    return
                logger.warning("operation %s: checking in failed (%s); trying again", self.record.id, error)

    def commit(self, change: Callable[[Operation], Operation], *, release: bool = False) -> Operation:
        """Write ``change`` now, with any published change. The lease is extended (and the heartbeat
        recorded) unless ``release``: the last write, after which renewals stop."""
        with self._lock:
            if self._lost:
                raise LeaseLost(self.record.id)
            record = self.record
            for _ in range(_MERGE_ATTEMPTS):
                updated = self._apply(record, change, release)
                try:
                    self.record = self._catalog.save(updated)
                    break
                except StaleRecord:
                    fresh = self._catalog.find(record.id)
                    if fresh is None or fresh.lease_owner != self.token:
                        self._lost = True
                        raise LeaseLost(record.id) from None
                    record = fresh
            else:
                raise LeaseLost(record.id)
            self._pending = None
            if release:
                self._stop.set()
            return self.record

    def _apply(self, record: Operation, change: Callable[[Operation], Operation], release: bool) -> Operation:
        if self._pending is not None:
            record = self._pending(record)
        record = change(record)
        now = self._clock()
        if release:
            return replace(record, lease_owner=None, lease_until=None, heartbeat_on=now, updated_on=now)
        return replace(record, lease_until=now + self._duration, heartbeat_on=now, updated_on=now)
