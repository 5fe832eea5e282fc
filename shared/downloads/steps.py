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
from shared.backups.layout import DUMP, read_file_list, snapshot_folder
from shared.catalog.activity import ActivityLog, new_entry_id
from shared.catalog.snapshots import SnapshotCatalog
from shared.clock import Clock
from shared.domain.access import Principal
from shared.domain.activity import Action, Outcome
from shared.domain.downloads import DataType
from shared.domain.operations import Operation, OperationStatus
from shared.domain.snapshots import Snapshot, SnapshotStatus
from shared.dumps.reader import DumpReader
from shared.dumps.recompress import recompressed
from shared.faults import Fault, crash_point
from shared.operations.engine import OperationDefinition, StepContext, StepDefinition

logger = logging.getLogger("appbackups.downloads")

KIND = "download"
READY_FOR = timedelta(hours=8)


def archive_folder(operation: Operation) -> str:
    return f"{operation.namespace}/{operation.environment_id}/{operation.snapshot_id}/{operation.id}/"


def file_name(snapshot: Snapshot, data_type: DataType) -> str:
    stem = f"{snapshot.environment_id}-{snapshot.created_on:%Y%m%d-%H%M%S}-{snapshot.id[:8]}"
    return f"{stem}.tar.gz" if data_type is DataType.FILES_AND_DATABASE else f"{stem}.backup"


def user_of(operation: Operation) -> str:
    return f"download {operation.id}"


class DownloadSteps:
    def __init__(
        self,
        *,
        snapshots: SnapshotCatalog,
        activity: ActivityLog,
        snapshot_store: BlobStore,
        content_store: BlobStore,
        archive_store: BlobStore,
        clock: Clock,
        block_size: int,
        compress_level: int,
    ) -> None:
        self._snapshots = snapshots
        self._activity = activity
        self._snapshot_store = snapshot_store
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

    def _snapshot(self, operation: Operation) -> Snapshot:
        snapshot = self._snapshots.find(operation.environment_id, str(operation.snapshot_id))
        if snapshot is None or snapshot.status is not SnapshotStatus.FINISHED:
            raise Fault(f"Backup {operation.snapshot_id} is no longer available.")
        return snapshot

    def prepare(self, context: StepContext) -> None:
        operation = context.operation
        snapshot = self._snapshot(operation)
        data_type = DataType(operation.parameters["dataType"])
        name = archive_folder(operation) + file_name(snapshot, data_type)
        folder = snapshot_folder(snapshot.namespace, snapshot.environment_id, snapshot.id)
        reader = DumpReader(
            self._snapshot_store,
            self._content,
            snapshot.namespace,
            folder,
            expected_sha256=snapshot.dump_sha256,
            expected_size=snapshot.dump_size,
        )
        if data_type is DataType.DATABASE_ONLY and reader.chunked:
            size, sha256 = self._write_dump(context, snapshot, reader, name)
        elif data_type is DataType.DATABASE_ONLY:
            size, sha256 = self._copy_dump(context, snapshot, folder + DUMP, name)
        else:
            size, sha256 = self._build_archive(context, snapshot, reader, name)
        context.output.update(archiveBlob=name, fileName=name.rsplit("/", 1)[1], archiveSize=size, archiveSha256=sha256)

    def _copy_dump(self, context: StepContext, snapshot: Snapshot, source: str, name: str) -> tuple[int, str]:
        """The dump alone: a server-side copy, then its SHA-256 checked by reading the copy once."""
        self._archives.copy_from_url(name, self._snapshot_store.copy_source_url(source, self._archives))
        digest = hashlib.sha256()
        size = 0
        for chunk in self._archives.read_chunks(name):
            digest.update(chunk)
            size += len(chunk)
            context.report(bytes_done=size, bytes_total=snapshot.dump_size, detail="checking the database dump")
        if digest.hexdigest() != snapshot.dump_sha256:
            raise ChecksumMismatch(f"The database dump of backup {snapshot.id} does not match its SHA-256.")
        return size, digest.hexdigest()

    def _write_dump(self, context: StepContext, snapshot: Snapshot, reader: DumpReader, name: str) -> tuple[int, str]:
        """The dump alone, from its chunks (each verified as it is read), its data compressed again as
        ``pg_dump -Fc`` compresses it (stored chunks hold it uncompressed, each chunk compressed on its own)."""
        writer = self._archives.writer(name, block_size=self._block_size)
        try:
            read = 0
            for chunk in recompressed(reader.chunks(), level=self._compress_level):
                writer.write(chunk)
                read += len(chunk)
                context.report(bytes_done=read, bytes_total=snapshot.dump_size, detail="writing the database dump")
            writer.commit(metadata={"sha256": writer.sha256}, content_type="application/octet-stream")
        except BaseException:
            writer.abort()
            raise
        return writer.size, writer.sha256

    def _build_archive(
        self, context: StepContext, snapshot: Snapshot, reader: DumpReader, name: str
    ) -> tuple[int, str]:
        total = (snapshot.dump_size or 0) + (snapshot.files_size or 0)
        progress = {"bytes": 0, "files": 0}

        def members() -> Iterator[Member]:
            yield Member(
                ARCHIVE_DUMP,
                int(snapshot.dump_size or 0),
                "sha256",
                str(snapshot.dump_sha256),
                reader.chunks,
            )
            for entry in read_file_list(self._snapshot_store, snapshot):
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
                total=snapshot.file_count,
                bytes_done=progress["bytes"],
                bytes_total=total,
                detail=f"archiving ({member.path})",
            )

        writer = self._archives.writer(name, block_size=self._block_size)
        try:
            write_archive(
                writer, self._metadata(snapshot), members(), compress_level=self._compress_level, on_member=written
            )
            writer.commit(metadata={"sha256": writer.sha256}, content_type="application/gzip")
        except BaseException:
            writer.abort()
            raise
        return writer.size, writer.sha256

    def _metadata(self, snapshot: Snapshot) -> bytes:
        duration = (snapshot.finished_on - snapshot.created_on).total_seconds() if snapshot.finished_on else 0
        return metadata_document(
            {
                "modelVersion": snapshot.model_version,
                "dumpSize": snapshot.dump_size,
                "databaseSize": snapshot.database_size,
                "filesSize": snapshot.files_size,
                "duration": round(duration, 3),
                "format": "appbackups/1",
                "snapshotId": snapshot.id,
                "environment": snapshot.environment_id,
                "namespace": snapshot.namespace,
                "tier": snapshot.tier.value,
                "createdOn": snapshot.created_on.isoformat(),
                "deploymentPackage": snapshot.deployment_package,
                "fileCount": snapshot.file_count,
                "dumpSha256": snapshot.dump_sha256,
                "comment": snapshot.comment,
            }
        )

    def publish(self, context: StepContext) -> None:
        operation = context.operation
        ready_on = datetime.fromisoformat(context.remember("readyOn", lambda: self._clock().isoformat()))
        entry_id = context.remember("activityEntry", new_entry_id)
        context.point_of_no_return(
            f"The download of backup {operation.snapshot_id} is ready; it expires by itself.",
            expiresOn=(ready_on + READY_FOR).isoformat(),
        )
        self._release(operation)
        prepared = operation.step("prepare").output
        self._activity.record(
            operation.environment_id,
            Action.DOWNLOAD,
            Outcome.FINISHED,
            Principal(operation.created_by.id, operation.created_by.name),
            f"Download of backup {operation.snapshot_id} ready ({operation.parameters['dataType']}, "
            f"{prepared.get('archiveSize', 0)} bytes) until {(ready_on + READY_FOR):%Y-%m-%d %H:%M} UTC.",
            snapshot_id=operation.snapshot_id,
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
            message = f"Download of backup {operation.snapshot_id} cancelled by {who.name or who.id}."
        else:
            outcome = Outcome.FAILED
            actor = Principal(operation.created_by.id, operation.created_by.name)
            message = f"Download of backup {operation.snapshot_id} failed: {operation.error}"
        self._activity.record(
            operation.environment_id,
            Action.DOWNLOAD,
            outcome,
            actor,
            message,
            snapshot_id=operation.snapshot_id,
            operation_id=operation.id,
            entry_id=entry_id,
        )

    def _release(self, operation: Operation) -> None:
        self._snapshots.release(operation.environment_id, str(operation.snapshot_id), user_of(operation))
