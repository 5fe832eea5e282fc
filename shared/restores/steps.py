"""The restore operation's steps. Each is safe to run again after a crash.

1. back up the target first (a pre-restore snapshot, so a wrong restore can be undone)
2. verify the backup: the dump's SHA-256, the file list's, and every content object's size and MD5
3. put the backup's file documents in place (server-side copies; identical ones are skipped, and
   ones that differ are left for after the switch, so a failed restore changes no file in use)
4. replace the database in one transaction (nothing half-restored, nothing left over)
5. replace the files that differed, and remove the files the restored database no longer refers to
6. unlock the target (Stopped) and log FINISHED
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from shared.adapters.blobs import BlobInfo, BlobStore
from shared.adapters.postgres import (
    ALL_FILE_DOCUMENTS_QUERY,
    ExportedSnapshot,
    PostgresGateway,
    restore_atomically,
)
from shared.backups.layout import DUMP, FILES, FileEntry, snapshot_folder
from shared.backups.runner import BackupRunner, RetryLater
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.snapshots import SnapshotCatalog
from shared.clock import Clock
from shared.domain.activity import Action, Outcome
from shared.domain.environments import Environment, EnvironmentState
from shared.domain.snapshots import Snapshot, SnapshotStatus, Tier
from shared.errors import AppError
from shared.faults import Fault
from shared.identity import Principal
from shared.operations.engine import OperationDefinition, StepContext, StepDefinition
from shared.operations.model import Operation
from shared.services.activity import ActivityLog
from shared.services.backups import BackupService

logger = logging.getLogger("appbackups.restore")

KIND = "restore"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class VerificationFailed(Fault):
    """The backup's data does not match its checksums."""


@dataclass
class RestoreHooks:
    """Test seam: wraps the dump stream the database step reads."""

    dump_stream: Callable[[Iterator[bytes]], Iterator[bytes]] | None = None


def _blob_md5(blob: BlobInfo) -> str | None:
    return blob.md5 or blob.metadata.get("md5")


def _merge_with_listing(
    entries: Iterator[FileEntry], listing: Iterator[BlobInfo], prefix: str
) -> Iterator[tuple[FileEntry, BlobInfo | None]]:
    """Pair each file entry (uuid order) with the target's blob of that uuid, if there is one."""
    current = next(listing, None)
    for entry in entries:
        name = prefix + entry.uuid
        while current is not None and current.name < name:
            current = next(listing, None)
        yield entry, current if current is not None and current.name == name else None


class RestoreSteps:
    def __init__(
        self,
        *,
        environments: EnvironmentCatalog,
        snapshots: SnapshotCatalog,
        backups: BackupService,
        backup_runner: BackupRunner,
        activity: ActivityLog,
        snapshot_store: BlobStore,
        content_store: BlobStore,
        file_store: Callable[[Environment], BlobStore],
        databases: PostgresGateway,
        postgres_bin_dir: str | None,
        clock: Clock,
        copy_concurrency: int = 16,
    ) -> None:
        self._environments = environments
        self._snapshots = snapshots
        self._backups = backups
        self._backup_runner = backup_runner
        self._activity = activity
        self._snapshot_store = snapshot_store
        self._content = content_store
        self._file_store = file_store
        self._databases = databases
        self._bin_dir = postgres_bin_dir
        self._clock = clock
        self._copy_concurrency = copy_concurrency
        self.hooks = RestoreHooks()

    def definition(self) -> OperationDefinition:
        return OperationDefinition(
            kind=KIND,
            steps=(
                StepDefinition("pre_restore_backup", "Back up the target environment first", self.pre_restore_backup),
                StepDefinition("verify_backup", "Verify the backup's checksums", self.verify_backup),
                StepDefinition("place_files", "Put the backup's file documents in place", self.place_files),
                StepDefinition("restore_database", "Replace the database in one transaction", self.restore_database),
                StepDefinition("clean_up_files", "Remove file documents no longer referred to", self.clean_up_files),
                StepDefinition("unlock", "Unlock the environment", self.unlock),
            ),
            on_failed=self.compensate,
        )

    # -- what the steps share ------------------------------------------------------------------

    def _source(self, operation: Operation) -> Snapshot:
        snapshot = self._snapshots.find(operation.parameters["sourceEnvironmentId"], str(operation.snapshot_id))
        if snapshot is None or snapshot.status is not SnapshotStatus.FINISHED:
            raise VerificationFailed(f"Backup {operation.snapshot_id} is no longer available.")
        return snapshot

    def _target(self, operation: Operation) -> Environment:
        target = self._environments.get(operation.environment_id)
        if target.active_restore_id != operation.id:
            raise VerificationFailed(f"Environment {target.id} is no longer locked by this restore.")
        return target

    def _entries(self, snapshot: Snapshot) -> Iterator[FileEntry]:
        folder = snapshot_folder(snapshot.namespace, snapshot.environment_id, snapshot.id)
        for line in self._snapshot_store.read_lines(folder + FILES):
            if line.strip():
                yield FileEntry.from_line(line)

    # -- 1 ---------------------------------------------------------------------------------------

    def pre_restore_backup(self, context: StepContext) -> None:
        operation = context.operation
        snapshot_id = context.output.get("preRestoreSnapshotId")
        if snapshot_id is None:
            snapshot = self._backups.record(
                operation.environment_id,
                Principal(operation.created_by.id, operation.created_by.name),
                tier=Tier.PRE_RESTORE,
                comment=f"Taken before restore {operation.id}",
            )
            snapshot_id = snapshot.id
            context.checkpoint(preRestoreSnapshotId=snapshot_id)
        context.report(detail="backing up the target")
        try:
            self._backup_runner.run(operation.environment_id, snapshot_id)
        except RetryLater as error:
            raise Fault(f"The pre-restore backup hit a transient fault: {error}", transient=True) from error
        snapshot = self._snapshots.get(operation.environment_id, snapshot_id)
        if snapshot.status is SnapshotStatus.PROCESSING:
            raise Fault("The pre-restore backup is still being made by another worker.", transient=True)
        if snapshot.status is SnapshotStatus.FAILED:
            raise Fault(f"The pre-restore backup failed, so nothing was overwritten: {snapshot.status_message}")

    # -- 2 ---------------------------------------------------------------------------------------

    def verify_backup(self, context: StepContext) -> None:
        snapshot = self._source(context.operation)
        folder = snapshot_folder(snapshot.namespace, snapshot.environment_id, snapshot.id)
        digest = hashlib.sha256()
        read = 0
        for chunk in self._snapshot_store.read_chunks(folder + DUMP):
            digest.update(chunk)
            read += len(chunk)
            context.report(bytes_done=read, bytes_total=snapshot.dump_size, detail="checking the database dump")
        if digest.hexdigest() != snapshot.dump_sha256:
            raise VerificationFailed(f"The database dump of backup {snapshot.id} does not match its SHA-256.")
        total = snapshot.file_count or 0
        checked = 0
        listing = self._content.list(f"{snapshot.namespace}/", with_metadata=True, page_size=5000)
        current = next(listing, None)
        for entry in self._entries(snapshot):
            while current is not None and current.name < entry.object:
                current = next(listing, None)
            if current is None or current.name != entry.object:
                raise VerificationFailed(
                    f"File document {entry.uuid} of backup {snapshot.id} is missing from the store."
                )
            if current.size != entry.size or _blob_md5(current) != entry.md5:
                raise VerificationFailed(f"File document {entry.uuid} of backup {snapshot.id} does not match its MD5.")
            checked += 1
            if checked % 200 == 0:
                context.report(done=checked, total=total, detail="checking file documents")
        if checked != total:
            raise VerificationFailed(f"Backup {snapshot.id} lists {checked} file documents, not {total}.")
        context.report(done=checked, total=total, detail="verified")

    # -- 3 and 5 ----------------------------------------------------------------------------------

    def _copy_files(self, context: StepContext, *, replace_different: bool) -> tuple[int, int]:
        """Copy what the target lacks (and, after the switch, what differs). Returns (copied, deferred)."""
        snapshot = self._source(context.operation)
        target = self._target(context.operation)
        store = self._file_store(target)
        prefix = target.files.prefix
        total = snapshot.file_count or 0
        bytes_total = snapshot.files_size or 0
        done = bytes_done = copied = deferred = 0
        listing = store.list(prefix, with_metadata=True, page_size=5000)
        with ThreadPoolExecutor(self._copy_concurrency, thread_name_prefix="restore-copy") as pool:
            pending = []
            for entry, existing in _merge_with_listing(self._entries(snapshot), listing, prefix):
                same = existing is not None and existing.size == entry.size and _blob_md5(existing) == entry.md5
                if existing is None or (replace_different and not same):
                    source_url = self._content.copy_source_url(entry.object, store)
                    pending.append(
                        pool.submit(
                            store.copy_from_url, prefix + entry.uuid, source_url, overwrite=existing is not None
                        )
                    )
                    copied += 1
                elif not same:
                    deferred += 1
                done += 1
                bytes_done += entry.size
                if len(pending) >= 4 * self._copy_concurrency:
                    for future in pending:
                        future.result()
                    pending.clear()
                    context.report(done=done, total=total, bytes_done=bytes_done, bytes_total=bytes_total)
            for future in pending:
                future.result()
        context.report(done=done, total=total, bytes_done=bytes_done, bytes_total=bytes_total)
        return copied, deferred

    def place_files(self, context: StepContext) -> None:
        copied, deferred = self._copy_files(context, replace_different=False)
        context.output.update(copied=copied, deferred=deferred)

    def clean_up_files(self, context: StepContext) -> None:
        replaced, _ = self._copy_files(context, replace_different=True)
        target = self._target(context.operation)
        store = self._file_store(target)
        prefix = target.files.prefix
        query = target.file_document_query or ALL_FILE_DOCUMENTS_QUERY
        removed = 0
        with ExportedSnapshot(self._databases.parameters(target.database)) as database:
            known = database.file_document_uuids(query)
            keep = next(known, None)
            for blob in store.list(prefix, page_size=5000):
                name = blob.name[len(prefix) :]
                if not _UUID.match(name):
                    continue  # not a file document: not ours to remove
                while keep is not None and keep < name:
                    keep = next(known, None)
                if keep != name:
                    store.delete(blob.name)
                    removed += 1
        context.output.update(replaced=replaced, removed=removed)
        context.report(detail=f"{replaced} replaced, {removed} removed")

    # -- 4 ---------------------------------------------------------------------------------------

    def restore_database(self, context: StepContext) -> None:
        snapshot = self._source(context.operation)
        target = self._target(context.operation)
        folder = snapshot_folder(snapshot.namespace, snapshot.environment_id, snapshot.id)
        total = snapshot.dump_size or 0

        def stream() -> Iterator[bytes]:
            read = 0
            for chunk in self._snapshot_store.read_chunks(folder + DUMP):
                read += len(chunk)
                context.report(bytes_done=read, bytes_total=total, detail="restoring the database")
                yield chunk

        def dump() -> Iterator[bytes]:
            return self.hooks.dump_stream(stream()) if self.hooks.dump_stream else stream()

        restore_atomically(self._databases.parameters(target.database), dump, self._bin_dir)

    # -- 6, and compensation -------------------------------------------------------------------

    def unlock(self, context: StepContext) -> None:
        operation = context.operation
        self._release(operation)
        pre_restore = operation.output("pre_restore_backup", "preRestoreSnapshotId")
        placed = operation.step("place_files").output
        cleaned = operation.step("clean_up_files").output
        self._activity.record(
            operation.environment_id,
            Action.RESTORE,
            Outcome.FINISHED,
            Principal(operation.created_by.id, operation.created_by.name),
            f"Restored backup {operation.snapshot_id} of {operation.parameters['sourceEnvironmentId']}: "
            f"{placed.get('copied', 0) + cleaned.get('replaced', 0)} file documents copied, "
            f"{cleaned.get('removed', 0)} removed. Pre-restore backup: {pre_restore}.",
            snapshot_id=operation.snapshot_id,
            operation_id=operation.id,
        )

    def compensate(self, operation: Operation) -> None:
        """A failed restore: unlock the target and say why. The database is as it was (the
        database step is one transaction); file documents that were added are not referred to."""
        self._release(operation)
        self._activity.record(
            operation.environment_id,
            Action.RESTORE,
            Outcome.FAILED,
            Principal(operation.created_by.id, operation.created_by.name),
            f"Restore of backup {operation.snapshot_id} failed at '{operation.error_step}': {operation.error}",
            snapshot_id=operation.snapshot_id,
            operation_id=operation.id,
        )

    def _release(self, operation: Operation) -> None:
        environment = self._environments.find(operation.environment_id)
        if environment is not None and environment.active_restore_id == operation.id:
            self._environments.save(
                replace(environment, state=EnvironmentState.STOPPED, active_restore_id=None, updated_on=self._clock())
            )
        source = self._snapshots.find(operation.parameters["sourceEnvironmentId"], str(operation.snapshot_id))
        if source is not None and source.in_use_by == f"restore {operation.id}":
            try:
                self._snapshots.save(replace(source, in_use_by=None))
            except AppError:
                logger.warning("could not release backup %s from restore %s", source.id, operation.id)
