"""Use cases on backups: request one, list, read, edit (comment, pin), cancel, delete."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from shared.adapters.blobs import BlobStore
from shared.adapters.errors import StorageFault
from shared.backups.layout import backup_folder
from shared.backups.pointintime import PastReader
from shared.backups.steps import KIND
from shared.catalog.activity import ActivityLog
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain import retention
from shared.domain.access import Principal
from shared.domain.activity import Action, Outcome
from shared.domain.backups import Actor, Backup, BackupStatus, Tier, is_backup_id, new_backup_id
from shared.domain.operations import Operation
from shared.errors import AlreadyExists, Conflict, NotFound, Unprocessable
from shared.operations.engine import OperationEngine

logger = logging.getLogger("appbackups.backups")

_UNSET = object()


class BackupService:
    def __init__(
        self,
        backup_catalog: BackupCatalog,
        environments: EnvironmentCatalog,
        activity: ActivityLog,
        engine: OperationEngine,
        backup_store: BlobStore,
        clock: Clock,
        past: PastReader | None = None,
    ) -> None:
        self._past = past or PastReader(None, environments, clock)
        self._backup_catalog = backup_catalog
        self._environments = environments
        self._activity = activity
        self._engine = engine
        self._store = backup_store
        self._clock = clock

    def request(
        self,
        environment_id: str,
        actor: Principal,
        *,
        comment: str = "",
        tier: Tier = Tier.MANUAL,
        backup_id: str | None = None,
        point_in_time: datetime | None = None,
        reconcile: bool = False,
    ) -> Backup:
        """Record a Processing backup and start making it. The environment must be eligible; a backup of the
        past (``point_in_time``) needs the environment's archive, and the instant inside its window. With
        ``reconcile`` its file documents are reconciled against a full listing of the file store, whenever the
        last one was."""
        if point_in_time is not None:
            tier = Tier.POINT_IN_TIME
        recorded = self.record(
            environment_id,
            actor,
            comment=comment,
            tier=tier,
            backup_id=backup_id,
            point_in_time=point_in_time,
            reconcile=reconcile,
        )
        return self.start(recorded)

    def start(self, backup: Backup) -> Backup:
        """Queue the making of a recorded backup; if the queue is down, the backup fails (503)."""
        self._engine.launch(
            str(backup.operation_id),
            "backup",
            detail="The work queue is unavailable; the backup was not started. Try again shortly.",
            code="queue_unavailable",
        )
        return backup

    def record_instant_for(
        self, parent: Operation, environment_id: str, actor: Principal, backup_id: str, instant: datetime, comment: str
    ) -> Backup:
        """Record the backup of ``instant`` that ``parent`` (a restore or a drill) waits for; if it cannot be
        recorded, ``parent`` is abandoned."""
        try:
            return self.record(
                environment_id,
                actor,
                comment=f"As of {instant:%Y-%m-%d %H:%M:%S} UTC, {comment}",
                backup_id=backup_id,
                parent_operation_id=parent.id,
                point_in_time=instant,
            )
        except Exception:
            self._engine.abandon(parent.id, "The backup of the instant could not be recorded.")
            raise

    def record(
        self,
        environment_id: str,
        actor: Principal,
        *,
        comment: str = "",
        tier: Tier = Tier.MANUAL,
        backup_id: str | None = None,
        parent_operation_id: str | None = None,
        point_in_time: datetime | None = None,
        reconcile: bool = False,
    ) -> Backup:
        """Record a Processing backup and the operation that makes it (not queued yet: see ``start``).
        A pre-restore backup, and the backup of the past a restore to a point in time makes, name the restore
        that waits for it. A backup of the past reads the archive, not the environment: its state does not
        matter (it may be the target of that very restore), only that it is registered."""
        environment = self._environments.get(environment_id)
        if point_in_time is not None and reconcile:
            raise Unprocessable(
                "A backup of the past takes its file documents from their captures, not from the file store: it "
                "has nothing to reconcile (leave out reconcile, or pointInTime).",
                code="reconcile_with_point_in_time",
            )
        if point_in_time is not None:
            tier, point_in_time = Tier.POINT_IN_TIME, point_in_time.astimezone(UTC)
            environment.ensure_registered("a backup of its past")
            self._past.check(environment, point_in_time)
        elif tier is Tier.POINT_IN_TIME:
            raise Unprocessable("A point-in-time backup needs its instant (pointInTime).", code="point_in_time_missing")
        elif tier is not Tier.PRE_RESTORE:
            environment.ensure_can_back_up()
        now = self._clock()
        backup_id = backup_id or new_backup_id(now)
        operation = self._engine.new(
            KIND,
            environment_id=environment.id,
            namespace=environment.namespace,
            actor=Actor(actor.id, actor.name),
            backup_id=backup_id,
            parameters={"tier": tier.value}
            | ({"parentOperationId": parent_operation_id} if parent_operation_id else {})
            | ({"reconcile": True} if reconcile else {}),
        )
        try:
            return self._backup_catalog.add(
                Backup(
                    id=backup_id,
                    environment_id=environment.id,
                    namespace=environment.namespace,
                    status=BackupStatus.PROCESSING,
                    tier=tier,
                    created_on=now,
                    expires_on=retention.expiry(tier, now),
                    created_by=Actor(actor.id, actor.name),
                    comment=comment,
                    deployment_package=environment.deployment_package,
                    model_version=environment.model_version,
                    operation_id=operation.id,
                    point_in_time=point_in_time,
                )
            )
        except AlreadyExists:
            self._engine.abandon(operation.id, f"Backup {backup_id} exists already.")
            raise

    def operation(self, backup: Backup) -> Operation | None:
        """The work that makes the backup, while it is being made (for its progress)."""
        if backup.status is not BackupStatus.PROCESSING or backup.operation_id is None:
            return None
        return self._engine.find(backup.operation_id)

    def cancel(self, environment_id: str, backup_id: str, actor: Principal) -> Backup:
        """Stop a backup being made; it ends Cancelled, its partial data removed. Idempotent."""
        backup = self.get(environment_id, backup_id)
        if backup.status is BackupStatus.CANCELLED:
            return backup
        if backup.status is not BackupStatus.PROCESSING or backup.operation_id is None:
            raise Conflict(
                f"Backup {backup.id} is {backup.status.value}; only a backup being made can be cancelled.",
                code="backup_not_processing",
                backupStatus=backup.status.value,
            )
        self._engine.cancel(backup.operation_id, Actor(actor.id, actor.name))
        return self._backup_catalog.get(environment_id, backup_id)

    def page(self, environment_id: str, *, limit: int, continuation: str | None) -> tuple[list[Backup], str | None]:
        self._environments.get(environment_id)
        return self._backup_catalog.page(environment_id, limit=limit, continuation=continuation)

    def get(self, environment_id: str, backup_id: str) -> Backup:
        self._environments.get(environment_id)
        if not is_backup_id(backup_id):
            raise NotFound(f"{backup_id!r} is not a backup id.", code="backup_not_found")
        return self._backup_catalog.get(environment_id, backup_id)

    def edit(
        self,
        environment_id: str,
        backup_id: str,
        actor: Principal,
        *,
        comment: str | None = None,
        keep_until: datetime | object | None = _UNSET,
    ) -> Backup:
        """Change the comment and/or pin the backup until a date (``keep_until=None`` unpins)."""
        backup = self.get(environment_id, backup_id)
        changes: dict[str, object] = {}
        notes = []
        if comment is not None and comment != backup.comment:
            changes["comment"] = comment
            notes.append("comment changed")
        if keep_until is not _UNSET and keep_until != backup.keep_until:
            if isinstance(keep_until, datetime) and keep_until <= self._clock():
                raise Unprocessable("keepUntil must be in the future.", code="keep_until_in_past")
            changes["keep_until"] = keep_until
            notes.append(f"kept until {keep_until.isoformat()}" if isinstance(keep_until, datetime) else "unpinned")
        if not changes:
            return backup
        edited = self._backup_catalog.save(replace(backup, **changes))  # type: ignore[arg-type]
        self._activity.record(
            environment_id,
            Action.EDIT,
            Outcome.FINISHED,
            actor,
            "Backup " + ", ".join(notes) + ".",
            backup_id=backup_id,
        )
        return edited

    def delete(self, environment_id: str, backup_id: str, actor: Principal) -> None:
        """Remove the backup and its own data. File contents it shared are reclaimed by pruning."""
        backup = self.get(environment_id, backup_id)
        backup.ensure_deletable()
        self._backup_catalog.delete(backup)
        folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
        try:
            self._store.delete_prefix(folder)
        except StorageFault:
            logger.warning("backup %s deleted from the catalog; its data is left to pruning", backup_id, exc_info=True)
        self._activity.record(
            environment_id,
            Action.DELETE,
            Outcome.FINISHED,
            actor,
            f"{backup.tier.value.capitalize()} backup of {backup.created_on:%Y-%m-%d %H:%M} UTC deleted.",
            backup_id=backup_id,
        )
