"""Use cases on restores: plan one (a dry run), request one (the pre-flight checks, then the lock), read its
status, cancel it; and the same for a restore to a point in time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from shared.backups.service import BackupService
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain.access import Permission, Principal
from shared.domain.backups import Actor, new_backup_id
from shared.domain.environments import Environment, EnvironmentState
from shared.domain.operations import Operation
from shared.domain.restores import PointInTimePlan, RestorePlan
from shared.errors import Conflict, NotFound, StaleRecord
from shared.operations.engine import OperationEngine
from shared.restores.preflight import Preflight
from shared.restores.steps import KIND, POINT_IN_TIME, user_of

logger = logging.getLogger("appbackups.restores")


class RestoreService:
    def __init__(
        self,
        engine: OperationEngine,
        environments: EnvironmentCatalog,
        backup_catalog: BackupCatalog,
        backups: BackupService,
        clock: Clock,
        preflight: Preflight,
    ) -> None:
        self._preflight = preflight
        self._engine = engine
        self._environments = environments
        self._backup_catalog = backup_catalog
        self._backups = backups
        self._clock = clock

    def plan(
        self,
        source_environment_id: str,
        backup_id: str,
        target_environment_id: str,
        actor: Principal,
        permissions: Callable[[str], frozenset[Permission]] | None = None,
    ) -> RestorePlan:
        """A dry run: the pre-flight checks, the sizes and the estimate. Changes nothing."""
        return self._preflight.plan(
            source_environment_id, backup_id, target_environment_id, actor, sizes=True, permissions=permissions
        )

    def request(
        self,
        source_environment_id: str,
        backup_id: str,
        target_environment_id: str,
        actor: Principal,
        permissions: Callable[[str], frozenset[Permission]] | None = None,
    ) -> Operation:
        """Start a restore. The pre-flight checks run first: a failed one refuses it (409, 422 or 403,
        naming the check) before anything is stopped, backed up or written."""
        plan = self._preflight.plan(
            source_environment_id, backup_id, target_environment_id, actor, sizes=False, permissions=permissions
        )
        plan.refuse_if_failed()
        backup, target = plan.backup, plan.target
        assert target is not None
        operation = self._engine.new(
            KIND,
            environment_id=target.id,
            namespace=target.namespace,
            actor=Actor(actor.id, actor.name),
            backup_id=backup.id,
            parameters={"sourceEnvironmentId": backup.environment_id, "targetEnvironmentId": target.id},
            warnings=plan.warnings,
        )
        self._lock(operation, target)
        self._mark_in_use(operation, backup.environment_id, backup.id)
        self._engine.launch(operation, "restore")
        return operation

    def plan_to_time(
        self,
        source_environment_id: str,
        instant: datetime,
        target_environment_id: str,
        actor: Principal,
        permissions: Callable[[str], frozenset[Permission]] | None = None,
    ) -> PointInTimePlan:
        """A dry run of a restore to a point in time: the pre-flight checks, the window and an estimate."""
        return self._preflight.plan_to_time(
            source_environment_id, instant.astimezone(UTC), target_environment_id, actor, permissions=permissions
        )

    def request_to_time(
        self,
        source_environment_id: str,
        instant: datetime,
        target_environment_id: str,
        actor: Principal,
        permissions: Callable[[str], frozenset[Permission]] | None = None,
    ) -> Operation:
        """Start a restore of the source environment as it was at ``instant`` (docs/decisions/0010): a restore
        like any other, of the backup of that instant, which it records now and makes as its first step. The
        same pre-flight, with the window in place of the backup's checks, refuses it before anything is done."""
        instant = instant.astimezone(UTC)
        plan = self.plan_to_time(source_environment_id, instant, target_environment_id, actor, permissions)
        plan.refuse_if_failed()
        source, target = plan.source, plan.target
        assert target is not None
        backup_id = new_backup_id(self._clock())
        operation = self._engine.new(
            KIND,
            environment_id=target.id,
            namespace=target.namespace,
            actor=Actor(actor.id, actor.name),
            backup_id=backup_id,
            parameters={
                "sourceEnvironmentId": source.id,
                "targetEnvironmentId": target.id,
                POINT_IN_TIME: instant.isoformat(),
            },
            warnings=plan.warnings,
        )
        self._lock(operation, target)
        self._backups.record_instant_for(
            operation, source.id, actor, backup_id, instant, f"for restore {operation.id} into {target.id}"
        )
        self._mark_in_use(operation, source.id, backup_id)
        self._engine.launch(operation, "restore")
        return operation

    def _lock(self, operation: Operation, target: Environment) -> None:
        """The target becomes Restoring, held by this restore; a concurrent change abandons it (409)."""
        try:
            self._environments.save(
                replace(
                    target, state=EnvironmentState.RESTORING, active_restore_id=operation.id, updated_on=self._clock()
                )
            )
        except StaleRecord as error:
            self._engine.abandon(operation.id, "The target environment changed while the restore was being started.")
            raise Conflict(
                f"Environment {target.id} changed while the restore was being started; look at it and try again.",
                code="concurrent_update",
            ) from error

    def _mark_in_use(self, operation: Operation, environment_id: str, backup_id: str) -> None:
        try:
            self._backup_catalog.mark_in_use(environment_id, backup_id, user_of(operation))
        except (StaleRecord, NotFound) as error:
            self._engine.abandon(operation.id, "The backup changed while the restore was being started.")
            raise Conflict(
                f"Backup {backup_id} changed (or is in use) while the restore was being started; try again.",
                code="concurrent_update",
            ) from error

    def get(self, restore_id: str) -> Operation:
        return self._engine.get(restore_id, KIND)

    def cancel(self, restore_id: str, actor: Principal) -> Operation:
        """Stop the restore and undo it: before its COMMIT the target is left exactly as it was; after
        it, cancel is refused (409) with the reason. Idempotent."""
        return self._engine.cancel(restore_id, Actor(actor.id, actor.name), KIND)
