"""Use cases on restores: plan one (a dry run), request one (the pre-flight checks, then the lock), read its
status, cancel it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from shared.backups.service import BackupService
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain.access import Permission, Principal
from shared.domain.backups import Actor
from shared.domain.environments import EnvironmentState
from shared.domain.operations import Operation
from shared.domain.restores import RestorePlan
from shared.errors import Conflict, NotFound, StaleRecord
from shared.operations.engine import OperationEngine
from shared.restores.preflight import Preflight
from shared.restores.steps import KIND, user_of

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
        warnings = list(plan.warnings)

        operation = self._engine.new(
            KIND,
            environment_id=target.id,
            namespace=target.namespace,
            actor=Actor(actor.id, actor.name),
            backup_id=backup.id,
            parameters={"sourceEnvironmentId": backup.environment_id, "targetEnvironmentId": target.id},
            warnings=tuple(warnings),
        )
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
        try:
            self._backup_catalog.mark_in_use(backup.environment_id, backup.id, user_of(operation))
        except (StaleRecord, NotFound) as error:
            self._engine.abandon(operation.id, "The backup changed while the restore was being started.")
            raise Conflict(
                f"Backup {backup.id} changed (or is in use) while the restore was being started; try again.",
                code="concurrent_update",
            ) from error
        self._engine.launch(operation, "restore")
        return operation

    def get(self, restore_id: str) -> Operation:
        return self._engine.get(restore_id, KIND)

    def cancel(self, restore_id: str, actor: Principal) -> Operation:
        """Stop the restore and undo it: before its COMMIT the target is left exactly as it was; after
        it, cancel is refused (409) with the reason. Idempotent."""
        return self._engine.cancel(restore_id, Actor(actor.id, actor.name), KIND)
