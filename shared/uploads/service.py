"""Use cases on uploads: hand out a write-only URL, then turn the uploaded archive into a backup."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import timedelta

from shared.adapters.blobs import BlobPermission, BlobStore
from shared.adapters.errors import StorageFault
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.uploads import UploadCatalog
from shared.clock import Clock
from shared.domain import retention
from shared.domain.access import Principal
from shared.domain.backups import Actor, Backup, BackupStatus, Tier, new_backup_id
from shared.domain.operations import Operation
from shared.domain.uploads import UploadSession, UploadStatus
from shared.errors import AlreadyExists, Conflict, StaleRecord
from shared.operations.engine import OperationEngine
from shared.uploads.steps import KIND

logger = logging.getLogger("appbackups.uploads")


class UploadService:
    def __init__(
        self,
        engine: OperationEngine,
        sessions: UploadCatalog,
        environments: EnvironmentCatalog,
        backup_catalog: BackupCatalog,
        uploads: BlobStore,
        clock: Clock,
        url_lifetime: timedelta,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._environments = environments
        self._backup_catalog = backup_catalog
        self._uploads = uploads
        self._clock = clock
        self._url_lifetime = url_lifetime

    def start(
        self, environment_id: str, actor: Principal, *, file_name: str | None = None, comment: str = ""
    ) -> tuple[UploadSession, str]:
        """A new upload session and its write-only URL (create and write on one blob, short-lived)."""
        environment = self._environments.get(environment_id)
        now = self._clock()
        upload_id = str(uuid.uuid4())
        session = self._sessions.add(
            UploadSession(
                id=upload_id,
                environment_id=environment.id,
                namespace=environment.namespace,
                blob_name=f"{environment.namespace}/{environment.id}/{upload_id}",
                created_on=now,
                expires_on=now + self._url_lifetime,
                created_by=Actor(actor.id, actor.name),
                file_name=file_name or None,
                comment=comment,
            )
        )
        return session, self.url(session)

    def url(self, session: UploadSession) -> str:
        return self._uploads.signed_url(session.blob_name, BlobPermission.CREATE_WRITE, session.expires_on)

    def complete(self, environment_id: str, upload_id: str, actor: Principal) -> tuple[Backup, Operation | None]:
        """Validate and ingest what was uploaded, in the background; a new backup (tier uploaded) appears.
        Completing again is harmless: it answers with the same backup (and finishes a completion that
        was interrupted half-way)."""
        session = self._sessions.get(environment_id, upload_id)
        if session.status is UploadStatus.COMPLETED and session.backup_id:
            existing = self._backup_catalog.find(environment_id, session.backup_id)
            if existing is not None:
                waiting = self._engine.find(str(session.operation_id)) if session.operation_id else None
                never_picked_up = waiting is not None and waiting.lease_owner is None and waiting.heartbeat_on is None
                if waiting is not None and waiting.open and never_picked_up:
                    self._launch(waiting)  # an earlier completion met a queue outage: this one queues it
                    return existing, waiting
                return existing, None
        if session.status is UploadStatus.EXPIRED:
            raise Conflict(f"Upload {upload_id} expired; start a new one.", code="upload_expired")
        info = self._uploads.info(session.blob_name)
        if info is None or info.size == 0:
            raise Conflict(
                f"Nothing has been uploaded for {upload_id} yet: PUT the archive to its uploadUrl first.",
                code="nothing_uploaded",
            )
        environment = self._environments.get(environment_id)
        now = self._clock()
        if session.status is not UploadStatus.COMPLETED:
            try:  # the claim: whoever completes the session first makes the backup
                session = self._sessions.save(
                    replace(
                        session,
                        status=UploadStatus.COMPLETED,
                        backup_id=new_backup_id(now),
                        operation_id=str(uuid.uuid4()),
                    )
                )
            except StaleRecord:
                return self.complete(environment_id, upload_id, actor)
        backup_id, operation_id = str(session.backup_id), str(session.operation_id)
        backup = self._backup_catalog.find(environment.id, backup_id)
        if backup is None:
            try:
                backup = self._backup_catalog.add(
                    Backup(
                        id=backup_id,
                        environment_id=environment.id,
                        namespace=environment.namespace,
                        status=BackupStatus.PROCESSING,
                        tier=Tier.UPLOADED,
                        created_on=now,
                        expires_on=retention.expiry(Tier.UPLOADED, now),
                        created_by=Actor(actor.id, actor.name),
                        comment=session.backup_comment,
                        operation_id=operation_id,
                    )
                )
            except AlreadyExists:  # a second completion at the same moment
                backup = self._backup_catalog.get(environment.id, backup_id)
        operation = self._engine.find(operation_id)
        if operation is None:
            try:
                operation = self._engine.new(
                    KIND,
                    environment_id=environment.id,
                    namespace=environment.namespace,
                    actor=Actor(actor.id, actor.name),
                    backup_id=backup_id,
                    parameters={"uploadId": upload_id, "uploadBlob": session.blob_name, "uploadSize": info.size},
                    operation_id=operation_id,
                )
            except AlreadyExists:
                operation = self._engine.get(operation_id)
        self._launch(operation)
        return backup, operation

    def _launch(self, operation: Operation) -> None:
        self._engine.launch(  # on an outage the operation waits; completing again (or the reaper) queues it
            operation, "upload", keep=True, detail="The work queue is unavailable; try completing the upload again."
        )

    def clean_up(self) -> list[UploadSession]:
        """Upload sessions never completed: their URL has expired, so their blob goes."""
        now = self._clock()
        expired = []
        for session in self._sessions.open_sessions():
            if session.expires_on + timedelta(hours=1) > now:
                continue
            try:
                self._uploads.delete(session.blob_name)
                expired.append(self._sessions.save(replace(session, status=UploadStatus.EXPIRED)))
            except (StorageFault, StaleRecord):
                logger.warning("could not expire upload %s", session.id)
        return expired
