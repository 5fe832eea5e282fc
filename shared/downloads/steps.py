"""The download operation, on the one engine: build the archive (verifying every checksum on the way),
then make it available for 8 hours through a read-only URL. Undo (a failure, or a cancel while it is
being prepared): the archive goes, the backup is released, and the outcome is logged."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from shared.adapters.blobs import BlobStore
from shared.archives.fullsnapshot import DUMP as ARCHIVE_DUMP
from shared.archives.fullsnapshot import ChecksumMismatch, Member, metadata_document, tree_path, write_archive
from shared.backups.layout import DUMP, backup_folder, read_file_list
from shared.catalog.activity import ActivityLog, new_entry_id
from shared.catalog.backups import BackupCatalog
from shared.clock import Clock
from shared.domain.access import Principal
from shared.domain.activity import Action, Outcome
from shared.domain.backups import Backup, BackupStatus
from shared.domain.downloads import DataType
from shared.domain.operations import Operation, OperationStatus
from shared.dumps.reader import DumpReader
from shared.dumps.recompress import recompressed
from shared.faults import Fault, crash_point
from shared.operations.engine import OperationDefinition, StepContext, StepDefinition

logger = logging.getLogger("appbackups.downloads")

KIND = "download"
READY_FOR = timedelta(hours=8)


def archive_folder(operation: Operation) -> str:
    return f"{operation.namespace}/{operation.environment_id}/{operation.backup_id}/{operation.id}/"


def file_name(backup: Backup, data_type: DataType) -> str:
    stem = f"{backup.environment_id}-{backup.created_on:%Y%m%d-%H%M%S}-{backup.id[:8]}"
    return f"{stem}.tar.gz" if data_type is DataType.FILES_AND_DATABASE else f"{stem}.backup"


def user_of(operation: Operation) -> str:
    return f"download {operation.id}"


class DownloadSteps:
    def __init__(
        self,
        *,
        backup_catalog: BackupCatalog,
        activity: ActivityLog,
        backup_store: BlobStore,
        content_store: BlobStore,
        archive_store: BlobStore,
        clock: Clock,
        block_size: int,
        compress_level: int,
    ) -> None:
        self._backup_catalog = backup_catalog
        self._activity = activity
        self._backup_store = backup_store
        self._content = content_store
        self._archives = archive_store
        self._clock = clock
        self._block_size = block_size
        self._compress_level = compress_level

    def definition(self) -> OperationDefinition:
        return OperationDefinition(
            kind=KIND,
            steps=(
                StepDefinition("prepare", "Prepare the archive", self.prepare),
                StepDefinition("publish", "Make it available for download", self.publish),
            ),
            undo=StepDefinition("undo", "Remove the archive", self.undo),
        )

    def _backup(self, operation: Operation) -> Backup:
        backup = self._backup_catalog.find(operation.environment_id, str(operation.backup_id))
        if backup is None or backup.status is not BackupStatus.FINISHED:
            raise Fault(f"Backup {operation.backup_id} is no longer available.")
        return backup

    def prepare(self, context: StepContext) -> None:
        operation = context.operation
        backup = self._backup(operation)
        data_type = DataType(operation.parameters["dataType"])
        name = archive_folder(operation) + file_name(backup, data_type)
        folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
        reader = DumpReader(
            self._backup_store,
            self._content,
            backup.namespace,
            folder,
            expected_sha256=backup.dump_sha256,
            expected_size=backup.dump_size,
        )
        if data_type is DataType.DATABASE_ONLY and reader.chunked:
            size, sha256 = self._write_dump(context, backup, reader, name)
        elif data_type is DataType.DATABASE_ONLY:
            size, sha256 = self._copy_dump(context, backup, folder + DUMP, name)
        else:
            size, sha256 = self._build_archive(context, backup, reader, name)
        context.output.update(archiveBlob=name, fileName=name.rsplit("/", 1)[1], archiveSize=size, archiveSha256=sha256)

    def _copy_dump(self, context: StepContext, backup: Backup, source: str, name: str) -> tuple[int, str]:
        """The dump alone: a server-side copy, then its SHA-256 checked by reading the copy once."""
        self._archives.copy_from_url(name, self._backup_store.copy_source_url(source, self._archives))
        digest = hashlib.sha256()
        size = 0
        for chunk in self._archives.read_chunks(name):
            digest.update(chunk)
            size += len(chunk)
            context.report(bytes_done=size, bytes_total=backup.dump_size, detail="checking the database dump")
        if digest.hexdigest() != backup.dump_sha256:
            raise ChecksumMismatch(f"The database dump of backup {backup.id} does not match its SHA-256.")
        return size, digest.hexdigest()

    def _write_dump(self, context: StepContext, backup: Backup, reader: DumpReader, name: str) -> tuple[int, str]:
        """The dump alone, from its chunks (each verified as it is read), its data compressed again as
        ``pg_dump -Fc`` compresses it (stored chunks hold it uncompressed, each chunk compressed on its own)."""
        writer = self._archives.writer(name, block_size=self._block_size)
        try:
            read = 0
            for chunk in recompressed(reader.chunks(), level=self._compress_level):
                writer.write(chunk)
                read += len(chunk)
                context.report(bytes_done=read, bytes_total=backup.dump_size, detail="writing the database dump")
            writer.commit(metadata={"sha256": writer.sha256}, content_type="application/octet-stream")
        except BaseException:
            writer.abort()
            raise
        return writer.size, writer.sha256

    def _build_archive(self, context: StepContext, backup: Backup, reader: DumpReader, name: str) -> tuple[int, str]:
        total = (backup.dump_size or 0) + (backup.files_size or 0)
        progress = {"bytes": 0, "files": 0}

        def members() -> Iterator[Member]:
            yield Member(
                ARCHIVE_DUMP,
                int(backup.dump_size or 0),
                "sha256",
                str(backup.dump_sha256),
                reader.chunks,
            )
            for entry in read_file_list(self._backup_store, backup):
                yield Member(
                    tree_path(entry.uuid),
                    entry.size,
                    "md5",
                    entry.md5,
                    lambda entry=entry: self._content.read_chunks(entry.object),  # type: ignore[misc]
                )

        def written(member: Member) -> None:
            progress["bytes"] += member.size
            progress["files"] += member.path.startswith("tree/")
            if progress["files"] == 1:
                crash_point("download.archive.building")
            context.report(
                done=progress["files"],
                total=backup.file_count,
                bytes_done=progress["bytes"],
                bytes_total=total,
                detail=f"archiving ({member.path})",
            )

        writer = self._archives.writer(name, block_size=self._block_size)
        try:
            write_archive(
                writer, self._metadata(backup), members(), compress_level=self._compress_level, on_member=written
            )
            writer.commit(metadata={"sha256": writer.sha256}, content_type="application/gzip")
        except BaseException:
            writer.abort()
            raise
        return writer.size, writer.sha256

    def _metadata(self, backup: Backup) -> bytes:
        duration = (backup.finished_on - backup.created_on).total_seconds() if backup.finished_on else 0
        return metadata_document(
            {
                "modelVersion": backup.model_version,
                "dumpSize": backup.dump_size,
                "databaseSize": backup.database_size,
                "filesSize": backup.files_size,
                "duration": round(duration, 3),
                "format": "appbackups/1",
                "snapshotId": backup.id,
                "environment": backup.environment_id,
                "namespace": backup.namespace,
                "tier": backup.tier.value,
                "createdOn": backup.created_on.isoformat(),
                "deploymentPackage": backup.deployment_package,
                "fileCount": backup.file_count,
                "dumpSha256": backup.dump_sha256,
                "comment": backup.comment,
            }
        )

    def publish(self, context: StepContext) -> None:
        operation = context.operation
        ready_on = datetime.fromisoformat(context.remember("readyOn", lambda: self._clock().isoformat()))
        entry_id = context.remember("activityEntry", new_entry_id)
        context.point_of_no_return(
            f"The download of backup {operation.backup_id} is ready; it expires by itself.",
            expiresOn=(ready_on + READY_FOR).isoformat(),
        )
        self._release(operation)
        prepared = operation.step("prepare").output
        self._activity.record(
            operation.environment_id,
            Action.DOWNLOAD,
            Outcome.FINISHED,
            Principal(operation.created_by.id, operation.created_by.name),
            f"Download of backup {operation.backup_id} ready ({operation.parameters['dataType']}, "
            f"{prepared.get('archiveSize', 0)} bytes) until {(ready_on + READY_FOR):%Y-%m-%d %H:%M} UTC.",
            backup_id=operation.backup_id,
            operation_id=operation.id,
            entry_id=entry_id,
        )

    def undo(self, context: StepContext) -> None:
        operation = context.operation
        entry_id = context.remember("activityEntry", new_entry_id)
        self._archives.delete_prefix(archive_folder(operation))
        self._release(operation)
        if operation.ending is OperationStatus.CANCELLED:
            who = operation.cancel_requested_by or operation.created_by
            outcome, actor = Outcome.CANCELLED, Principal(who.id, who.name)
            message = f"Download of backup {operation.backup_id} cancelled by {who.name or who.id}."
        else:
            outcome = Outcome.FAILED
            actor = Principal(operation.created_by.id, operation.created_by.name)
            message = f"Download of backup {operation.backup_id} failed: {operation.error}"
        self._activity.record(
            operation.environment_id,
            Action.DOWNLOAD,
            outcome,
            actor,
            message,
            backup_id=operation.backup_id,
            operation_id=operation.id,
            entry_id=entry_id,
        )

    def _release(self, operation: Operation) -> None:
        self._backup_catalog.release(operation.environment_id, str(operation.backup_id), user_of(operation))
