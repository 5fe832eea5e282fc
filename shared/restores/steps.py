"""The restore operation's steps. Each is safe to run again after a crash.

1. back up the target first (a pre-restore snapshot, so a wrong restore can be undone)
2. switch — in one step, because the database switches only when all of it has succeeded:
   the backup's file documents are put in place (server-side copies; each content object's size
   and MD5 checked against the backup's file list; identical target files skipped; files that
   differ left for step 3, so nothing the current database uses changes before the switch),
   while the database is loaded in one transaction with the dump's SHA-256 checked as it streams.
   COMMIT is sent only when the files are in place and every checksum matched.
3. replace the files that differed, and remove the files the restored database does not refer to
4. unlock the target (Stopped) and log FINISHED
A failure removes the file documents the restore copied (their metadata names it) that the
target's database does not refer to, unlocks the target and logs FAILED.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
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
from shared.streams import prefetched

logger = logging.getLogger("appbackups.restore")

KIND = "restore"
# Metadata on each file document a restore copies into its target: which restore put it there.
PLACED_BY = "appbackupsrestore"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class VerificationFailed(Fault):
    """The backup's data does not match its checksums."""


@dataclass
class RestoreHooks:
    """Test seams: wrap the dump stream the switch reads; run just before its COMMIT."""

    dump_stream: Callable[[Iterator[bytes]], Iterator[bytes]] | None = None
    before_commit: Callable[[], None] | None = None


def _blob_md5(blob: BlobInfo) -> str | None:
    return blob.md5 or blob.metadata.get("md5")


@dataclass(frozen=True)
class Placement:
    copied: int  # file documents copied into the target
    deferred: int  # file documents the target has with other content, left for after the switch
    extras: int  # file documents the target has that the backup does not


class _TargetMerge:
    """Pairs each file entry (uuid order) with the target's blob of that uuid, if it has one, and
    counts the target's file documents that the backup does not have (``extras``)."""

    def __init__(self, listing: Iterator[BlobInfo], prefix: str) -> None:
        self._listing = listing
        self._prefix = prefix
        self.extras = 0

    def _skip(self, blob: BlobInfo) -> None:
        if _UUID.match(blob.name[len(self._prefix) :]):
            self.extras += 1

    def pairs(self, entries: Iterator[FileEntry]) -> Iterator[tuple[FileEntry, BlobInfo | None]]:
        current = next(self._listing, None)
        for entry in entries:
            name = self._prefix + entry.uuid
            while current is not None and current.name < name:
                self._skip(current)
                current = next(self._listing, None)
            matched = current is not None and current.name == name
            yield entry, current if matched else None
            if matched:
                current = next(self._listing, None)
        while current is not None:
            self._skip(current)
            current = next(self._listing, None)


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
                StepDefinition(
                    "switch",
                    "Verify the backup, put its file documents in place and replace the database in one transaction",
                    self.switch,
                ),
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
            self._backup_runner.run(
                operation.environment_id,
                snapshot_id,
                on_files=lambda collected, total: context.report(
                    done=collected, total=total, detail="backing up the target: file documents"
                ),
            )
        except RetryLater as error:
            raise Fault(f"The pre-restore backup hit a transient fault: {error}", transient=True) from error
        snapshot = self._snapshots.get(operation.environment_id, snapshot_id)
        if snapshot.status is SnapshotStatus.PROCESSING:
            raise Fault("The pre-restore backup is still being made by another worker.", transient=True)
        if snapshot.status is SnapshotStatus.FAILED:
            raise Fault(f"The pre-restore backup failed, so nothing was overwritten: {snapshot.status_message}")
        files = snapshot.file_count or 0
        context.report(done=files, total=files, detail=f"backup {snapshot.id} of the target")

    # -- 2 ---------------------------------------------------------------------------------------

    def switch(self, context: StepContext) -> None:
        snapshot = self._source(context.operation)
        target = self._target(context.operation)
        folder = snapshot_folder(snapshot.namespace, snapshot.environment_id, snapshot.id)
        total = snapshot.dump_size or 0
        digest = {"sha256": hashlib.sha256()}

        def stream() -> Iterator[bytes]:
            digest["sha256"] = hashing = hashlib.sha256()
            read = 0
            # Read ahead, so that pg_restore is not kept waiting on each storage request.
            for chunk in prefetched(self._snapshot_store.read_chunks(folder + DUMP), depth=2):
                hashing.update(chunk)
                read += len(chunk)
                context.report(bytes_done=read, bytes_total=total)
                yield chunk

        def dump() -> Iterator[bytes]:
            return self.hooks.dump_stream(stream()) if self.hooks.dump_stream else stream()

        stop = threading.Event()
        with ThreadPoolExecutor(1, thread_name_prefix="restore-files") as pool:
            placing = pool.submit(self._copy_files, context, snapshot, target, replace_different=False, stop=stop)

            def before_commit() -> None:
                context.report(detail="waiting for the file documents before the switch")
                placement = placing.result()
                context.output.update(copied=placement.copied, deferred=placement.deferred, extras=placement.extras)
                if digest["sha256"].hexdigest() != snapshot.dump_sha256:
                    raise VerificationFailed(f"The database dump of backup {snapshot.id} does not match its SHA-256.")
                if self.hooks.before_commit:
                    self.hooks.before_commit()
                context.report(detail="switching the database")

            try:
                restore_atomically(
                    self._databases.parameters(target.database), dump, self._bin_dir, before_commit=before_commit
                )
            finally:
                stop.set()  # when the database part failed first, stop copying
                wait([placing])

    def _copy_files(
        self,
        context: StepContext,
        snapshot: Snapshot,
        target: Environment,
        *,
        replace_different: bool,
        stop: threading.Event | None = None,
    ) -> Placement:
        """Copy into the target what it lacks (and, with ``replace_different``, what differs), checking
        each content object against the file list."""
        store = self._file_store(target)
        prefix = target.files.prefix
        total = snapshot.file_count or 0
        done = copied = deferred = 0
        contents = prefetched(self._content.list(f"{snapshot.namespace}/", with_metadata=True, page_size=1000))
        content = next(contents, None)
        target_files = _TargetMerge(prefetched(store.list(prefix, with_metadata=True, page_size=1000)), prefix)
        with ThreadPoolExecutor(self._copy_concurrency, thread_name_prefix="restore-copy") as pool:
            pending: deque[Future[bool]] = deque()
            for entry, existing in target_files.pairs(self._entries(snapshot)):
                if stop is not None and stop.is_set():
                    raise Fault("The restore stopped while placing file documents.", transient=True)
                while content is not None and content.name < entry.object:
                    content = next(contents, None)
                if content is None or content.name != entry.object:
                    raise VerificationFailed(
                        f"File document {entry.uuid} of backup {snapshot.id} is missing from the store."
                    )
                if content.size != entry.size or _blob_md5(content) != entry.md5:
                    raise VerificationFailed(
                        f"File document {entry.uuid} of backup {snapshot.id} does not match its MD5."
                    )
                same = existing is not None and existing.size == entry.size and _blob_md5(existing) == entry.md5
                if existing is None or (replace_different and not same):
                    source_url = self._content.copy_source_url(entry.object, store)
                    pending.append(
                        pool.submit(
                            store.copy_from_url,
                            prefix + entry.uuid,
                            source_url,
                            metadata={**content.metadata, PLACED_BY: context.operation.id},
                            overwrite=existing is not None,
                        )
                    )
                    copied += 1
                elif not same:
                    deferred += 1
                done += 1
                while len(pending) > 2 * self._copy_concurrency:  # a sliding window of copies in flight
                    pending.popleft().result()
                if done % 100 == 0:
                    context.report(done=done, total=total, detail="placing file documents")
            while pending:
                pending.popleft().result()
        if done != total:
            raise VerificationFailed(f"Backup {snapshot.id} lists {done} file documents, not {total}.")
        context.report(done=done, total=total)
        return Placement(copied, deferred, target_files.extras)

    # -- 3 ---------------------------------------------------------------------------------------

    def clean_up_files(self, context: StepContext) -> None:
        operation = context.operation
        target = self._target(operation)
        replaced = 0
        if operation.output("switch", "deferred", 0):
            replaced = self._copy_files(context, self._source(operation), target, replace_different=True).copied
        elif not operation.output("switch", "extras", 1):
            # The target had no file document the backup lacks, and none differed: nothing to remove.
            context.output.update(replaced=0, removed=0)
            context.report(done=0, total=0, detail="nothing to remove")
            return
        store = self._file_store(target)
        prefix = target.files.prefix
        # After the switch the target holds the backup's file documents and its own extras.
        total = (self._source(operation).file_count or 0) + operation.output("switch", "extras", 0)
        checked = removed = 0
        with ExportedSnapshot(self._databases.parameters(target.database)) as database:
            known = database.file_document_uuids(target.file_document_query, default=ALL_FILE_DOCUMENTS_QUERY)
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
                checked += 1
                if checked % 500 == 0:
                    context.report(done=checked, total=max(total, checked), detail=f"{removed} removed so far")
        context.output.update(replaced=replaced, removed=removed)
        context.report(done=checked, total=checked, detail=f"{replaced} replaced, {removed} removed")

    # -- 6, and compensation -------------------------------------------------------------------

    def unlock(self, context: StepContext) -> None:
        operation = context.operation
        self._release(operation)
        pre_restore = operation.output("pre_restore_backup", "preRestoreSnapshotId")
        placed = operation.step("switch").output
        cleaned = operation.step("clean_up_files").output
        self._record(
            operation,
            Outcome.FINISHED,
            f"Restored backup {operation.snapshot_id} of {operation.parameters['sourceEnvironmentId']}: "
            f"{placed.get('copied', 0) + cleaned.get('replaced', 0)} file documents copied, "
            f"{cleaned.get('removed', 0)} removed. Pre-restore backup: {pre_restore}.",
        )

    def compensate(self, operation: Operation) -> None:
        """A failed restore: remove the file documents it added that the target's database does not
        refer to, unlock the target and say why. The database is as it was (the database step is
        one transaction), or — when a later step failed — exactly the backup's."""
        removed = ""
        try:
            count = self._remove_added_files(operation)
            if count:
                removed = f" The {count} file documents it had added were removed."
        except Exception as error:  # the target stays usable; the files are unreferenced extras
            logger.warning("restore %s: could not remove the file documents it added: %s", operation.id, error)
            removed = " The file documents it had added could not be removed; the next restore removes them."
        self._release(operation)
        self._record(
            operation,
            Outcome.FAILED,
            f"Restore of backup {operation.snapshot_id} failed at '{operation.error_step}': {operation.error}"
            + removed,
        )

    def _record(self, operation: Operation, outcome: Outcome, message: str) -> None:
        """Log the restore in the target's activity log and, when the backup is another
        environment's, in that one's too: its data went somewhere."""
        actor = Principal(operation.created_by.id, operation.created_by.name)
        source = operation.parameters["sourceEnvironmentId"]
        logs = [(operation.environment_id, message)]
        if source != operation.environment_id:
            logs.append((source, f"Into {operation.environment_id}: {message}"))
        for environment_id, text in logs:
            self._activity.record(
                environment_id,
                Action.RESTORE,
                outcome,
                actor,
                text,
                snapshot_id=operation.snapshot_id,
                operation_id=operation.id,
            )

    def _remove_added_files(self, operation: Operation) -> int:
        """Remove the file documents this restore copied (their metadata names it) that the target's
        database does not refer to. Files that were there before the restore stay."""
        if not operation.step("switch").attempts:
            return 0  # nothing was placed
        target = self._environments.find(operation.environment_id)
        if target is None or target.active_restore_id != operation.id:
            return 0
        store = self._file_store(target)
        prefix = target.files.prefix
        added = (
            blob.name[len(prefix) :]
            for blob in store.list(prefix, with_metadata=True)
            if blob.metadata.get(PLACED_BY) == operation.id and _UUID.match(blob.name[len(prefix) :])
        )
        removed = 0
        with ExportedSnapshot(self._databases.parameters(target.database)) as database:
            known = database.file_document_uuids(target.file_document_query, default=ALL_FILE_DOCUMENTS_QUERY)
            keep = next(known, None)
            for name in added:
                while keep is not None and keep < name:
                    keep = next(known, None)
                if keep != name:
                    store.delete(prefix + name)
                    removed += 1
        return removed

    def _release(self, operation: Operation) -> None:
        environment = self._environments.find(operation.environment_id)
        if environment is not None and environment.active_restore_id == operation.id:
            self._environments.save(
                replace(environment, state=EnvironmentState.STOPPED, active_restore_id=None, updated_on=self._clock())
            )
        try:
            self._snapshots.release(
                operation.parameters["sourceEnvironmentId"], str(operation.snapshot_id), f"restore {operation.id}"
            )
        except AppError:
            logger.warning("could not release backup %s from restore %s", operation.snapshot_id, operation.id)
