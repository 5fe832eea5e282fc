"""Use cases on downloads: request an archive of a backup, see whether it is ready, cancel it, clean up."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from shared.adapters.blobs import BlobPermission, BlobStore
from shared.backups.service import BackupService
from shared.catalog.backups import BackupCatalog
from shared.catalog.operations import OperationCatalog
from shared.clock import Clock
from shared.domain.access import Principal
from shared.domain.backups import Actor, Backup, BackupStatus
from shared.domain.downloads import DataType, Download, expected_size
from shared.domain.operations import Operation, OperationStatus
from shared.downloads.steps import KIND, archive_folder, user_of
from shared.errors import Conflict, NotFound, StaleRecord
from shared.operations.engine import OperationEngine

logger = logging.getLogger("appbackups.downloads")


class DownloadService:
    def __init__(
        self,
        engine: OperationEngine,
        operations: OperationCatalog,
        backup_catalog: BackupCatalog,
        backups: BackupService,
        archives: BlobStore,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._operations = operations
        self._backup_catalog = backup_catalog
        self._backups = backups
        self._archives = archives
        self._clock = clock

    def request(
        self, environment_id: str, backup_id: str, data_type: DataType, actor: Principal
    ) -> tuple[Download, bool]:
        """Start preparing an archive, or return the one being prepared or ready. True when started now."""
        backup = self._backups.get(environment_id, backup_id)
        if backup.status is not BackupStatus.FINISHED:
            raise Conflict(
                f"Backup {backup.id} is {backup.status.value}; only a Finished backup can be downloaded.",
                code="backup_not_finished",
            )
        current = self._current(backup, data_type)
        if current is not None and current.status in ("Processing", "Ready"):
            return self._sized(backup, current), False
        operation = self._engine.new(
            KIND,
            environment_id=backup.environment_id,
            namespace=backup.namespace,
            actor=Actor(actor.id, actor.name),
            backup_id=backup.id,
            parameters={"dataType": data_type.value},
        )
        try:
            self._backup_catalog.update(
                backup.environment_id,
                backup.id,
                lambda latest: replace(
                    latest,
                    in_use_by=tuple(dict.fromkeys((*latest.in_use_by, user_of(operation)))),
                    downloads={**latest.downloads, data_type.value: operation.id},
                    latest_download=data_type.value,
                ),
            )
        except (StaleRecord, NotFound) as error:
            self._engine.abandon(operation.id, "The backup changed while the download was being started.")
            raise Conflict(f"Backup {backup.id} changed while the download was being started; try again.") from error
        self._engine.launch(operation, "download")
        return self._sized(backup, self._describe(operation, data_type)), True

    def status(self, environment_id: str, backup_id: str, data_type: DataType | None) -> Download:
        backup = self._backups.get(environment_id, backup_id)
        chosen = data_type or (DataType(backup.latest_download) if backup.latest_download else None)
        current = self._current(backup, chosen) if chosen else None
        if current is None:
            raise NotFound(
                f"No download of backup {backup.id} has been requested; POST to this route to prepare one.",
                code="download_not_requested",
            )
        return self._sized(backup, current)

    @staticmethod
    def _sized(backup: Backup, download: Download) -> Download:
        size, estimate = expected_size(backup, download.data_type)
        return replace(download, expected_size=size, expected_size_is_estimate=estimate)

    def _current(self, backup: Backup, data_type: DataType) -> Download | None:
        operation_id = backup.downloads.get(data_type.value)
        if operation_id is None:
            return None
        operation = self._operations.find(operation_id)
        return self._describe(operation, data_type) if operation is not None else None

    def cancel(self, environment_id: str, backup_id: str, data_type: DataType | None, actor: Principal) -> Download:
        """Stop preparing a download; the archive goes. Idempotent; refused (409) once it is ready."""
        current = self.status(environment_id, backup_id, data_type)
        if current.status == "Cancelled":
            return current
        if current.status != "Processing":
            raise Conflict(
                f"The download is {current.status}; only a download being prepared can be cancelled.",
                code="download_not_processing",
                downloadStatus=current.status,
            )
        operation = self._engine.cancel(current.operation.id, Actor(actor.id, actor.name), KIND)
        return self._describe(operation, current.data_type)

    def _describe(self, operation: Operation, data_type: DataType) -> Download:
        if operation.status is OperationStatus.RUNNING:
            return Download("Processing", data_type, operation)
        if operation.status is OperationStatus.FAILED:
            return Download("Failed", data_type, operation)
        if operation.status is OperationStatus.CANCELLED:
            return Download("Cancelled", data_type, operation)
        prepared = operation.step("prepare").output
        published = operation.step("publish").output
        ready_on = datetime.fromisoformat(published["readyOn"])
        expires_on = datetime.fromisoformat(published["expiresOn"])
        common = {
            "ready_on": ready_on,
            "expires_on": expires_on,
            "file_name": prepared.get("fileName"),
            "size": prepared.get("archiveSize"),
            "sha256": prepared.get("archiveSha256"),
        }
        if expires_on <= self._clock() or operation.parameters.get("archiveRemoved"):
            return Download("Expired", data_type, operation, **common)  # type: ignore[arg-type]
        url = self._archives.signed_url(
            prepared["archiveBlob"],
            BlobPermission.READ,
            expires_on,
            content_disposition=f'attachment; filename="{prepared["fileName"]}"',
        )
        return Download("Ready", data_type, operation, url=url, **common)  # type: ignore[arg-type]

    def clean_up(self) -> list[Operation]:
        """Remove prepared archives whose 8 hours are over."""
        now = self._clock()
        removed = []
        for operation in self._operations.of_kind(KIND, OperationStatus.FINISHED):
            if self._expire(operation, now):
                try:
                    self._operations.save(
                        replace(operation, parameters={**operation.parameters, "archiveRemoved": True})
                    )
                except StaleRecord:
                    continue
                removed.append(operation)
        return removed

    def _expire(self, operation: Operation, now: datetime) -> bool:
        """Remove a ready archive whose time is up. True when it was removed now."""
        expires = operation.output("publish", "expiresOn")
        if not expires or datetime.fromisoformat(expires) > now or operation.parameters.get("archiveRemoved"):
            return False
        self._archives.delete_prefix(archive_folder(operation))
        return True
