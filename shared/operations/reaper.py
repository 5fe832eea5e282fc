"""The safety net behind the engine's own recovery, run by a timer: nothing stays Running, Processing
or in use because a message was lost or a worker vanished at the wrong moment."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from shared.catalog.operations import OperationCatalog
from shared.catalog.snapshots import SnapshotCatalog
from shared.clock import Clock
from shared.domain.operations import Operation
from shared.domain.snapshots import Snapshot
from shared.errors import StaleRecord
from shared.operations.engine import OperationEngine

logger = logging.getLogger("appbackups.reaping")


@dataclass
class ReapReport:
    woken: list[Operation] = field(default_factory=list)
    released: list[tuple[str, str]] = field(default_factory=list)  # (backup, user)
    orphans_failed: list[Snapshot] = field(default_factory=list)


class Reaper:
    def __init__(
        self,
        engine: OperationEngine,
        operations: OperationCatalog,
        snapshots: SnapshotCatalog,
        clock: Clock,
        grace: timedelta,
    ) -> None:
        self._engine = engine
        self._operations = operations
        self._snapshots = snapshots
        self._clock = clock
        self._grace = grace

    def reap(self) -> ReapReport:
        report = ReapReport(woken=self._engine.reap())
        self._release_ended_users(report)
        self._fail_orphans(report)
        return report

    def _release_ended_users(self, report: ReapReport) -> None:
        """A backup's ``inUseBy`` entry goes when the restore or download that set it has ended (or
        does not exist): it is released by the work itself, and here if that was missed."""
        for snapshot in self._snapshots.in_use():
            for user in snapshot.in_use_by:
                _, _, operation_id = user.partition(" ")
                operation = self._operations.find(operation_id)
                if operation is not None and operation.open:
                    continue
                if operation is None and self._clock() - snapshot.created_on < self._grace:
                    continue  # being started right now
                try:
                    self._snapshots.release(snapshot.environment_id, snapshot.id, user)
                except StaleRecord:
                    continue  # changed meanwhile: the next run looks again
                logger.warning("backup %s was still marked in use by %s, which has ended; released", snapshot.id, user)
                report.released.append((snapshot.id, user))

    def _fail_orphans(self, report: ReapReport) -> None:
        """A backup Processing with no operation to make it (its recording was interrupted) fails."""
        now = self._clock()
        for snapshot in self._snapshots.processing():
            if now - snapshot.created_on < self._grace:
                continue
            operation = self._operations.find(snapshot.operation_id) if snapshot.operation_id else None
            if operation is not None and operation.open:
                continue
            message = "The work that was to make this backup was never recorded or has ended without it."
            try:
                failed = self._snapshots.save(snapshot.failed(now, message))
            except StaleRecord:
                continue
            logger.warning("backup %s of %s had no work making it; marked Failed", snapshot.id, snapshot.environment_id)
            report.orphans_failed.append(failed)
