"""Use cases on restore drills: start one for a backup (by hand, or the weekly timer for the newest Finished
backup of every environment that has not opted out), read it, cancel it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from shared.backups.service import BackupService
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain.access import SCHEDULER, Principal
from shared.domain.backups import Actor, Backup, BackupStatus
from shared.domain.operations import Operation
from shared.domain.verification import Verification, VerificationStatus
from shared.drills.steps import KIND, user_of
from shared.errors import Conflict, NotFound, StaleRecord
from shared.operations.engine import OperationEngine

logger = logging.getLogger("appbackups.drills")


@dataclass(frozen=True)
class ScheduledDrills:
    started: tuple[str, ...] = ()  # environments
    skipped: tuple[tuple[str, str], ...] = ()  # (environment, why)


class DrillService:
    def __init__(
        self,
        engine: OperationEngine,
        environments: EnvironmentCatalog,
        backup_catalog: BackupCatalog,
        backups: BackupService,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._environments = environments
        self._backup_catalog = backup_catalog
        self._backups = backups
        self._clock = clock

    def request(self, environment_id: str, backup_id: str, actor: Principal) -> Operation:
        """Start a drill of a Finished backup: the backup shows verification Running and is in use until it
        ends. Refused (409) while another drill of it runs."""
        backup = self._backups.get(environment_id, backup_id)
        if backup.status is not BackupStatus.FINISHED:
            raise Conflict(
                f"Backup {backup.id} is {backup.status.value}; only a Finished backup can be verified.",
                code="backup_not_finished",
            )
        running = self._running(backup)
        if running is not None:
            raise Conflict(
                f"A restore drill of backup {backup.id} is running already ({running.id}).",
                code="verification_running",
                drillId=running.id,
            )
        environment = self._environments.get(backup.environment_id)
        environment.ensure_registered("a restore drill")
        operation = self._engine.new(
            KIND,
            environment_id=backup.environment_id,
            namespace=backup.namespace,
            actor=Actor(actor.id, actor.name),
            backup_id=backup.id,
            parameters={
                "previousVerification": backup.verification.to_dict() if backup.verification else None,
            },
        )
        running_now = Verification(VerificationStatus.RUNNING, operation.id, operation.created_on)
        try:
            self._backup_catalog.save(
                replace(
                    backup,
                    verification=running_now,
                    in_use_by=tuple(dict.fromkeys((*backup.in_use_by, user_of(operation)))),
                )
            )
        except (StaleRecord, NotFound) as error:
            self._engine.abandon(operation.id, "The backup changed while the drill was being started.")
            raise Conflict(
                f"Backup {backup.id} changed while the drill was being started; try again.",
                code="concurrent_update",
            ) from error
        self._engine.launch(operation, "drill")
        logger.info("restore drill %s of backup %s of %s started", operation.id, backup.id, backup.environment_id)
        return operation

    def _running(self, backup: Backup) -> Operation | None:
        verification = backup.verification
        if verification is None or verification.status is not VerificationStatus.RUNNING:
            return None
        operation = self._engine.find(verification.operation_id)
        return operation if operation is not None and operation.open else None

    def get(self, drill_id: str) -> Operation:
        return self._engine.get(drill_id, KIND)

    def cancel(self, drill_id: str, actor: Principal) -> Operation:
        """Stop a drill: its scratch database is dropped, the backup keeps its earlier result. Idempotent."""
        return self._engine.cancel(drill_id, Actor(actor.id, actor.name), KIND)

    def run_scheduled(self) -> ScheduledDrills:
        """The weekly timer: a drill of the newest Finished backup of every registered environment that has
        not opted out (``scheduledDrills: false``) and has no drill running."""
        started, skipped = [], []
        for environment in self._environments.registered():
            if not environment.scheduled_drills:
                skipped.append((environment.id, "it opted out (scheduledDrills: false)"))
                continue
            backup = self._backup_catalog.latest_recovery_point(environment.id)
            if backup is None:
                skipped.append((environment.id, "it has no Finished backup"))
                continue
            try:
                self.request(environment.id, backup.id, SCHEDULER)
            except Conflict as refused:
                skipped.append((environment.id, refused.detail))
                continue
            started.append(environment.id)
        for environment_id, why in skipped:
            logger.info("no scheduled restore drill of %s: %s", environment_id, why)
        logger.info("scheduled restore drills: %d started, %d skipped", len(started), len(skipped))
        return ScheduledDrills(tuple(started), tuple(skipped))
