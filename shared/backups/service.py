"""Use cases on backups: request one, list, read, edit (comment, pin), cancel, delete."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from shared.adapters.blobs import BlobStore
from shared.adapters.errors import StorageFault
from shared.backups.layout import snapshot_folder
from shared.backups.steps import KIND
from shared.catalog.activity import ActivityLog
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.snapshots import SnapshotCatalog
from shared.clock import Clock
from shared.domain import retention
from shared.domain.access import Principal
from shared.domain.activity import Action, Outcome
from shared.domain.operations import Operation
from shared.domain.snapshots import Actor, Snapshot, SnapshotStatus, Tier, is_snapshot_id, new_snapshot_id
from shared.errors import AlreadyExists, Conflict, NotFound, ServiceUnavailable, Unprocessable
from shared.operations.engine import OperationEngine

logger = logging.getLogger("appbackups.backups")

_UNSET = object()


class BackupService:
    def __init__(
        self,
        snapshots: SnapshotCatalog,
        environments: EnvironmentCatalog,
        activity: ActivityLog,
        engine: OperationEngine,
        snapshot_store: BlobStore,
        clock: Clock,
    ) -> None:
        self._snapshots = snapshots
        self._environments = environments
        self._activity = activity
        self._engine = engine
        self._store = snapshot_store
        self._clock = clock

    def request(
        self,
        environment_id: str,
        actor: Principal,
        *,
        comment: str = "",
        tier: Tier = Tier.MANUAL,
        snapshot_id: str | None = None,
    ) -> Snapshot:
        """Record a Processing backup and start making it. The environment must be eligible."""
        return self.start(self.record(environment_id, actor, comment=comment, tier=tier, snapshot_id=snapshot_id))

    def start(self, snapshot: Snapshot) -> Snapshot:
        """Queue the making of a recorded backup; if the queue is down, the backup fails (503)."""
        try:
            self._engine.wake(str(snapshot.operation_id))
        except StorageFault as error:
            self._engine.abandon(str(snapshot.operation_id), "The backup could not be queued.")
            raise ServiceUnavailable(
                "The work queue is unavailable; the backup was not started. Try again shortly.",
                code="queue_unavailable",
            ) from error
        return snapshot

    def record(
        self,
        environment_id: str,
        actor: Principal,
        *,
        comment: str = "",
        tier: Tier = Tier.MANUAL,
        snapshot_id: str | None = None,
        parent_operation_id: str | None = None,
    ) -> Snapshot:
        """Record a Processing backup and the operation that makes it (not queued yet: see ``start``).
        A pre-restore backup names the restore that waits for it."""
        environment = self._environments.get(environment_id)
        if tier is not Tier.PRE_RESTORE:
            environment.ensure_can_back_up()
        now = self._clock()
        snapshot_id = snapshot_id or new_snapshot_id(now)
        operation = self._engine.new(
            KIND,
            environment_id=environment.id,
            namespace=environment.namespace,
            actor=Actor(actor.id, actor.name),
            snapshot_id=snapshot_id,
            parameters={"tier": tier.value}
            | ({"parentOperationId": parent_operation_id} if parent_operation_id else {}),
        )
        try:
            return self._snapshots.add(
                Snapshot(
                    id=snapshot_id,
                    environment_id=environment.id,
                    namespace=environment.namespace,
                    status=SnapshotStatus.PROCESSING,
                    tier=tier,
                    created_on=now,
                    expires_on=retention.expiry(tier, now),
                    created_by=Actor(actor.id, actor.name),
                    comment=comment,
                    deployment_package=environment.deployment_package,
                    model_version=environment.model_version,
                    operation_id=operation.id,
                )
            )
        except AlreadyExists:
            self._engine.abandon(operation.id, f"Backup {snapshot_id} exists already.")
            raise

    def operation(self, snapshot: Snapshot) -> Operation | None:
        """The work that makes the backup, while it is being made (for its progress)."""
        if snapshot.status is not SnapshotStatus.PROCESSING or snapshot.operation_id is None:
            return None
        return self._engine.find(snapshot.operation_id)

    def cancel(self, environment_id: str, snapshot_id: str, actor: Principal) -> Snapshot:
        """Stop a backup being made; it ends Cancelled, its partial data removed. Idempotent."""
        snapshot = self.get(environment_id, snapshot_id)
        if snapshot.status is SnapshotStatus.CANCELLED:
            return snapshot
        if snapshot.status is not SnapshotStatus.PROCESSING or snapshot.operation_id is None:
            raise Conflict(
                f"Backup {snapshot.id} is {snapshot.status.value}; only a backup being made can be cancelled.",
                code="backup_not_processing",
                backupStatus=snapshot.status.value,
            )
        self._engine.cancel(snapshot.operation_id, Actor(actor.id, actor.name))
        return self._snapshots.get(environment_id, snapshot_id)

    def page(self, environment_id: str, *, limit: int, continuation: str | None) -> tuple[list[Snapshot], str | None]:
        self._environments.get(environment_id)
        return self._snapshots.page(environment_id, limit=limit, continuation=continuation)

    def get(self, environment_id: str, snapshot_id: str) -> Snapshot:
        self._environments.get(environment_id)
        if not is_snapshot_id(snapshot_id):
            raise NotFound(f"{snapshot_id!r} is not a backup id.", code="backup_not_found")
        return self._snapshots.get(environment_id, snapshot_id)

    def edit(
        self,
        environment_id: str,
        snapshot_id: str,
        actor: Principal,
        *,
        comment: str | None = None,
        keep_until: datetime | object | None = _UNSET,
    ) -> Snapshot:
        """Change the comment and/or pin the backup until a date (``keep_until=None`` unpins)."""
        snapshot = self.get(environment_id, snapshot_id)
        changes: dict[str, object] = {}
        notes = []
        if comment is not None and comment != snapshot.comment:
            changes["comment"] = comment
            notes.append("comment changed")
        if keep_until is not _UNSET and keep_until != snapshot.keep_until:
            if isinstance(keep_until, datetime) and keep_until <= self._clock():
                raise Unprocessable("keepUntil must be in the future.", code="keep_until_in_past")
            changes["keep_until"] = keep_until
            notes.append(f"kept until {keep_until.isoformat()}" if isinstance(keep_until, datetime) else "unpinned")
        if not changes:
            return snapshot
        edited = self._snapshots.save(replace(snapshot, **changes))  # type: ignore[arg-type]
        self._activity.record(
            environment_id,
            Action.EDIT,
            Outcome.FINISHED,
            actor,
            "Backup " + ", ".join(notes) + ".",
            snapshot_id=snapshot_id,
        )
        return edited

    def delete(self, environment_id: str, snapshot_id: str, actor: Principal) -> None:
        """Remove the snapshot and its own data. File contents it shared are reclaimed by pruning."""
        snapshot = self.get(environment_id, snapshot_id)
        snapshot.ensure_deletable()
        self._snapshots.delete(snapshot)
        folder = snapshot_folder(snapshot.namespace, snapshot.environment_id, snapshot.id)
        try:
            self._store.delete_prefix(folder)
        except StorageFault:
            logger.warning(
                "backup %s deleted from the catalog; its data is left to pruning", snapshot_id, exc_info=True
            )
        self._activity.record(
            environment_id,
            Action.DELETE,
            Outcome.FINISHED,
            actor,
            f"{snapshot.tier.value.capitalize()} backup of {snapshot.created_on:%Y-%m-%d %H:%M} UTC deleted.",
            snapshot_id=snapshot_id,
        )
