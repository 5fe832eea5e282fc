"""Use cases on restores: request one (checks, lock, pre-flight warnings), read its status, cancel it."""

from __future__ import annotations

import logging
from dataclasses import replace

from shared.adapters.errors import StorageFault
from shared.backups.service import BackupService
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.snapshots import SnapshotCatalog
from shared.clock import Clock
from shared.domain.access import Principal
from shared.domain.environments import EnvironmentState
from shared.domain.operations import Operation
from shared.domain.snapshots import Actor, SnapshotStatus
from shared.errors import Conflict, NotFound, ServiceUnavailable, StaleRecord, Unprocessable
from shared.operations.engine import OperationEngine
from shared.restores.steps import KIND, user_of

logger = logging.getLogger("appbackups.restores")


class RestoreService:
    def __init__(
        self,
        engine: OperationEngine,
        environments: EnvironmentCatalog,
        snapshots: SnapshotCatalog,
        backups: BackupService,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._environments = environments
        self._snapshots = snapshots
        self._backups = backups
        self._clock = clock

    def request(
        self, source_environment_id: str, snapshot_id: str, target_environment_id: str, actor: Principal
    ) -> Operation:
        snapshot = self._backups.get(source_environment_id, snapshot_id)
        if snapshot.status is not SnapshotStatus.FINISHED:
            raise Conflict(
                f"Backup {snapshot.id} is {snapshot.status.value}; only a Finished backup can be restored.",
                code="backup_not_finished",
            )
        target = self._environments.get(target_environment_id)
        if target.namespace != snapshot.namespace:
            raise Unprocessable(
                f"Backup {snapshot.id} belongs to namespace {snapshot.namespace!r} and environment {target.id} to "
                f"{target.namespace!r}: backups are restored only within their own namespace.",
                code="cross_namespace",
            )
        target.ensure_not_restoring("another restore")
        if target.state is not EnvironmentState.STOPPED:
            raise Conflict(
                f"Environment {target.id} is {target.state.value}: stop the environment first, then restore.",
                code="environment_not_stopped",
                state=target.state.value,
            )
        warnings: list[str] = []
        if snapshot.model_version != target.model_version:
            warnings.append(
                f"The backup was made with model version {snapshot.model_version or 'unknown'} and {target.id} "
                f"runs {target.model_version or 'an unknown version'}: deploy the same model "
                f"({snapshot.model_version or 'of the backup'}) to {target.id} after the restore."
            )

        operation = self._engine.new(
            KIND,
            environment_id=target.id,
            namespace=target.namespace,
            actor=Actor(actor.id, actor.name),
            snapshot_id=snapshot.id,
            parameters={"sourceEnvironmentId": snapshot.environment_id, "targetEnvironmentId": target.id},
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
            self._snapshots.mark_in_use(snapshot.environment_id, snapshot.id, user_of(operation))
        except (StaleRecord, NotFound) as error:
            self._engine.abandon(operation.id, "The backup changed while the restore was being started.")
            raise Conflict(
                f"Backup {snapshot.id} changed (or is in use) while the restore was being started; try again.",
                code="concurrent_update",
            ) from error
        try:
            self._engine.start(operation)
        except StorageFault as error:
            self._engine.abandon(operation.id, "The restore could not be queued.")
            raise ServiceUnavailable("The work queue is unavailable; the restore was not started.") from error
        return operation

    def get(self, restore_id: str) -> Operation:
        return self._engine.get(restore_id, KIND)

    def cancel(self, restore_id: str, actor: Principal) -> Operation:
        """Stop the restore and undo it: before its COMMIT the target is left exactly as it was; after
        it, cancel is refused (409) with the reason. Idempotent."""
        return self._engine.cancel(restore_id, Actor(actor.id, actor.name), KIND)
