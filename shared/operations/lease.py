"""A worker's claim on an operation, kept alive from a background thread. Why its writes merge on an ETag
conflict, and when it checks in: docs/decisions/0012."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from shared.catalog.operations import OperationCatalog
from shared.clock import Clock
from shared.domain.operations import Operation
from shared.errors import StaleRecord

logger = logging.getLogger("appbackups.operations")

_MERGE_ATTEMPTS = 8
DEFAULT_PROGRESS_INTERVAL = timedelta(seconds=2)


class LeaseLost(Exception):
    """Another worker took the operation over while this one worked on it (or the row is gone)."""


class CancelRequested(Exception):
    """Somebody asked to cancel the operation; the running step stops."""


class OperationLease:
    def __init__(
        self,
        record: Operation,
        catalog: OperationCatalog,
        duration: timedelta,
        clock: Clock,
        progress_interval: timedelta = DEFAULT_PROGRESS_INTERVAL,
    ) -> None:
        self._catalog = catalog
        self._duration = duration
        self._clock = clock
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._pending: Callable[[Operation], Operation] | None = None
        self._lost = False
        self._stopping = threading.Event()
        self._written_on: datetime = record.heartbeat_on or clock()
        self.wake = min(progress_interval, duration / 4)  # at most one request per wake
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

    def step_stopping(self) -> threading.Event:
        """A new event for a step that starts now: set as soon as the lease learns of a cancel request it
        must act on, or is lost (at once if it knows already)."""
        with self._lock:
            self._stopping = threading.Event()
            self._notice()
            return self._stopping

    def publish(self, change: Callable[[Operation], Operation]) -> None:
        """Apply ``change`` (progress) with the next check-in; a newer change replaces it."""
        with self._lock:
            self._pending = change

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.wake.total_seconds()):
            try:
                self.check_in()
            except LeaseLost:
                return
            except Exception as error:  # storage unreachable: try again, but never past the lease
                until = self.record.lease_until
                if until is not None and self._clock() >= until:
                    logger.warning("operation %s: could not check in before the lease ran out; stopping", self.token)
                    with self._lock:
                        self._lost = True
                        self._notice()
                    return
                logger.warning("operation %s: checking in failed (%s); trying again", self.record.id, error)

    def check_in(self) -> None:
        """One wake of the background thread: write pending progress, or renew when due before the next
        wake, or read the row to notice a cancel. At most one request."""
        with self._lock:
            if self._stop.is_set():
                return
            # progress if any, else a renewal due before the next wake, else a read to notice a cancel
            if self._pending is not None or self._clock() - self._written_on >= self._duration / 4 - self.wake:
                self.commit(lambda record: record)
            elif not self._knows_enough():
                self._read()

    def _knows_enough(self) -> bool:
        """Nothing a read could tell would stop the step: a cancel is known already, or could not apply."""
        record = self.record
        return record.cancel_requested_by is not None or bool(record.no_return) or record.ending is not None

    def _read(self) -> None:
        fresh = self._catalog.find(self.record.id)
        if fresh is None or fresh.lease_owner != self.token:
            self._lost = True
            self._notice()
            raise LeaseLost(self.record.id)
        self.record = fresh
        self._notice()

    def _notice(self) -> None:
        if self._lost or self.cancel_requested:
            self._stopping.set()

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
                except StaleRecord:  # changed meanwhile (a cancel, say): still ours? apply the change to it again
                    fresh = self._catalog.find(record.id)
                    if fresh is None or fresh.lease_owner != self.token:
                        self._lost = True
                        self._notice()
                        raise LeaseLost(record.id) from None
                    record = fresh
                    self.record = fresh  # a cancel it carries reaches the step even if ``change`` raises
                    self._notice()
            else:
                raise LeaseLost(record.id)
            self._written_on = updated.heartbeat_on or self._clock()
            self._pending = None
            self._notice()
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
