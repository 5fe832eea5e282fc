"""The safety net behind the engine's own recovery, run by a timer: nothing stays Running, Processing
or in use because a message was lost or a worker vanished at the wrong moment."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from shared.catalog.backups import BackupCatalog
from shared.catalog.operations import OperationCatalog
from shared.clock import Clock
from shared.domain.backups import Backup
from shared.domain.operations import Operation
from shared.errors import StaleRecord
from shared.operations.engine import OperationEngine

logger = logging.getLogger("appbackups.reaping")


@dataclass
class ReapReport:
    woken: list[Operation] = field(default_factory=list)
    released: list[tuple[str, str]] = field(default_factory=list)  # (backup, user)
    orphans_failed: list[Backup] = field(default_factory=list)


class Reaper:
    def __init__(
        self,
        engine: OperationEngine,
        operations: OperationCatalog,
        backup_catalog: BackupCatalog,
        clock: Clock,
        grace: timedelta,
    ) -> None:
        self._engine = engine
        self._operations = operations
        self._backup_catalog = backup_catalog
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
        for backup in self._backup_catalog.in_use():
            for user in backup.in_use_by:
                _, _, operation_id = user.partition(" ")
                operation = self._operations.find(operation_id)
                if operation is not None and operation.open:
                    continue
                if operation is None and self._clock() - backup.created_on < self._grace:
                    continue  # being started right now
                try:
                    self._backup_catalog.release(backup.environment_id, backup.id, user)
                except StaleRecord:
                    continue  # changed meanwhile: the next run looks again
                logger.warning("backup %s was still marked in use by %s, which has ended; released", backup.id, user)
                report.released.append((backup.id, user))

    def _fail_orphans(self, report: ReapReport) -> None:
        """A backup Processing with no operation to make it (its recording was interrupted) fails."""
        now = self._clock()
        for backup in self._backup_catalog.processing():
            if now - backup.created_on < self._grace:
                continue
            operation = self._operations.find(backup.operation_id) if backup.operation_id else None
            if operation is not None and operation.open:
                continue
            message = "The work that was to make this backup was never recorded or has ended without it."
            try:
                failed = self._backup_catalog.save(backup.failed(now, message))
            except StaleRecord:
                continue
            logger.warning("backup %s of %s had no work making it; marked Failed", backup.id, backup.environment_id)
            report.orphans_failed.append(failed)
