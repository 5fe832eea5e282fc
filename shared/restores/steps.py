"""The restore operation's steps and its undo, on the one engine; each is safe to run again after a crash.
What each does, and why the switch is one step: README, "How a restore runs"."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

from shared.adapters.blobs import BlobInfo, BlobStore
from shared.adapters.errors import SourceChanged
from shared.adapters.postgres import Databases, RestoreStopped
from shared.backups.layout import FileEntry, backup_folder, read_file_list, read_row_counts
from shared.backups.service import BackupService
from shared.catalog.activity import ActivityLog, new_entry_id
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain.access import Principal
from shared.domain.activity import Action, Outcome
from shared.domain.backups import Actor, Backup, BackupStatus, Tier, new_backup_id
from shared.domain.environments import Environment, EnvironmentState
from shared.domain.operations import Operation, OperationStatus
from shared.dumps.reader import DumpReader
from shared.errors import AlreadyExists, Conflict, StaleRecord
from shared.faults import Fault, crash_point
from shared.merges import SortedStream, missing_from
from shared.operations.engine import OperationDefinition, OperationEngine, StepContext, StepDefinition, WaitLater
from shared.streams import prefetched

logger = logging.getLogger("appbackups.restore")

KIND = "restore"
# A restore to a point in time: the instant (ISO 8601, UTC) among its parameters; its backup is the backup of
# that instant, recorded with the restore and made while step 1 runs (docs/decisions/0010).
POINT_IN_TIME = "pointInTime"
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


class RestoreSteps:
    def __init__(
        self,
        *,
        environments: EnvironmentCatalog,
        backup_catalog: BackupCatalog,
        backups: BackupService,
        engine: OperationEngine,
        activity: ActivityLog,
        backup_store: BlobStore,
        content_store: BlobStore,
        file_store: Callable[[Environment], BlobStore],
        databases: Databases,
        clock: Clock,
        copy_concurrency: int,
        pre_restore_poll: float = 10.0,
    ) -> None:
        self._pre_restore_poll = pre_restore_poll
        self._environments = environments
        self._backup_catalog = backup_catalog
        self._backups = backups
        self._engine = engine
        self._activity = activity
        self._backup_store = backup_store
        self._content = content_store
        self._file_store = file_store
        self._databases = databases
        self._clock = clock
        self._copy_concurrency = copy_concurrency
        self.hooks = RestoreHooks()

    def definition(self) -> OperationDefinition:
        return OperationDefinition(
            kind=KIND,
            steps=(
                StepDefinition(
                    "pre_restore_backup",
                    "Back up the target environment first (to a point in time: and make the backup of that instant)",
                    self.pre_restore_backup,
                ),
                StepDefinition(
                    "switch",
                    "Verify the backup, put its file documents in place and replace the database in one transaction",
                    self.switch,
                ),
                StepDefinition("clean_up_files", "Remove file documents no longer referred to", self.clean_up_files),
                StepDefinition("unlock", "Unlock the environment", self.unlock),
            ),
            undo=StepDefinition("undo", "Undo the restore's changes and unlock the environment", self.undo),
        )

    # -- what the steps share ------------------------------------------------------------------

    def _source(self, operation: Operation) -> Backup:
        backup = self._backup_catalog.find(operation.parameters["sourceEnvironmentId"], str(operation.backup_id))
        if backup is None or backup.status is not BackupStatus.FINISHED:
            raise VerificationFailed(f"Backup {operation.backup_id} is no longer available.")
        return backup

    def _target(self, operation: Operation) -> Environment:
        target = self._environments.get(operation.environment_id)
        if target.active_restore_id != operation.id:
            raise VerificationFailed(f"Environment {target.id} is no longer locked by this restore.")
        return target

    # -- 1 ---------------------------------------------------------------------------------------

    def pre_restore_backup(self, context: StepContext) -> None:
        """Step 1: a pre-restore backup of the target (an operation of its own, waited for), so that a wrong
        restore can be undone. A restore to a point in time makes the backup of its instant meanwhile (also an
        operation of its own, recorded with the restore) and waits for both."""
        operation = context.operation
        past = self._backup_of_the_past(context)
        backup_id = context.remember("preRestoreSnapshotId", lambda: new_backup_id(self._clock()))
        backup = self._backup_catalog.find(operation.environment_id, backup_id)
        if backup is None:
            try:
                backup = self._backups.record(
                    operation.environment_id,
                    Principal(operation.created_by.id, operation.created_by.name),
                    tier=Tier.PRE_RESTORE,
                    comment=f"Taken before restore {operation.id}",
                    backup_id=backup_id,
                    parent_operation_id=operation.id,
                )
            except AlreadyExists:  # recorded by an earlier attempt that died before it could see it
                backup = self._backup_catalog.get(operation.environment_id, backup_id)
            self._backups.start(backup)
        if past is not None and past.status in (BackupStatus.FAILED, BackupStatus.CANCELLED):
            why = f"failed: {past.status_message}" if past.status is BackupStatus.FAILED else "was cancelled"
            raise Fault(f"The backup of {_instant(operation)} {why}; nothing was overwritten.")
        busy = [
            (each, noun)
            for each, noun in ((past, "the backup of the instant"), (backup, "the pre-restore backup"))
            if each is not None and each.status is BackupStatus.PROCESSING
        ]
        if busy:
            first = busy[0][0]
            child = self._engine.find(str(first.operation_id))
            progress = child.steps[0].progress if child is not None else None
            doing = "making the backup of the instant" if first is past else "backing up the target"
            context.report(
                done=progress.done if progress else 0,
                total=progress.total if progress else None,
                detail=f"{doing} ({progress.detail if progress else 'queued'})",
            )
            raise WaitLater(self._pre_restore_poll, f"waiting for {' and '.join(noun for _, noun in busy)}")
        if backup.status is BackupStatus.FAILED:
            raise Fault(f"The pre-restore backup failed, so nothing was overwritten: {backup.status_message}")
        if backup.status is BackupStatus.CANCELLED:
            raise Fault("The pre-restore backup was cancelled, so nothing was overwritten.")
        files = backup.file_count or 0
        context.report(done=files, total=files, detail=f"backup {backup.id} of the target")

    def _backup_of_the_past(self, context: StepContext) -> Backup | None:
        """The backup a restore to a point in time restores (None for other restores); queued on the step's
        first run (a second message to it is dropped, so a repeat does no harm)."""
        operation = context.operation
        if not operation.parameters.get(POINT_IN_TIME):
            return None
        past = self._backup_catalog.find(operation.parameters["sourceEnvironmentId"], str(operation.backup_id))
        if past is None:
            raise Fault(f"The backup of {_instant(operation)} is gone; nothing was overwritten.")
        if past.status is BackupStatus.PROCESSING and past.operation_id and not context.output.get("pastQueued"):
            self._engine.wake(past.operation_id)
            context.checkpoint(pastQueued=True)
        return past

    # -- 2 ---------------------------------------------------------------------------------------

    def switch(self, context: StepContext) -> None:
        """Step 2, one step because the database switches only when all of it has succeeded: the file documents
        are put in place while the dump loads in one transaction, whose COMMIT waits until both are checked."""
        backup = self._source(context.operation)
        target = self._target(context.operation)
        transaction = context.output.get("commitTransaction")
        if transaction is not None:
            # An earlier attempt sent (or was about to send) the COMMIT, then died: ask the server.
            committed = self._databases.transaction_committed(target.database, int(transaction))
            if committed is None:
                raise Fault("The database switch of an earlier attempt has not ended yet.", transient=True)
            if committed:
                context.output["committed"] = True
                return
            context.output.pop("commitTransaction")
            context.take_back_point_of_no_return()
        folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
        total = backup.dump_size or 0
        digest = {"sha256": hashlib.sha256()}

        reads = itertools.count()  # the dump is read twice: its table of contents first, then to load it

        def stream(loading: bool) -> Iterator[bytes]:
            digest["sha256"] = hashing = hashlib.sha256()
            read = 0
            # Read ahead, so that pg_restore is not kept waiting on each storage request.
            # Every chunk is verified as it is read (DumpReader); the whole dump's SHA-256 before the COMMIT.
            reader = DumpReader(self._backup_store, self._content, backup.namespace, folder)
            for chunk in prefetched(reader.chunks(), depth=2):
                hashing.update(chunk)
                read += len(chunk)
                context.report(bytes_done=read, bytes_total=total, detail="loading the database")
                yield chunk
                if loading and read == len(chunk):
                    crash_point("restore.database.loading")
                if loading and read - len(chunk) < total // 2 <= read:
                    crash_point("restore.database.half-loaded")

        def dump() -> Iterator[bytes]:
            chunks = stream(loading=next(reads) > 0)
            return self.hooks.dump_stream(chunks) if self.hooks.dump_stream else chunks

        stop = threading.Event()
        with ThreadPoolExecutor(1, thread_name_prefix="restore-files") as pool:
            placing = pool.submit(self._copy_files, context, backup, target, replace_different=False, stop=stop)

            def before_commit(transaction: int) -> None:
                context.report(detail="waiting for the file documents before the switch")
                placement = placing.result()  # in place, and each checked against the file list
                if digest["sha256"].hexdigest() != backup.dump_sha256:
                    raise VerificationFailed(f"The database dump of backup {backup.id} does not match its SHA-256.")
                if self.hooks.before_commit:
                    self.hooks.before_commit()
                crash_point("restore.database.before_commit")
                # The transaction's id is checkpointed before the COMMIT, so a repeat after a crash asks the server
                # whether it committed instead of guessing; from here on a cancel is refused.
                context.point_of_no_return(
                    f"The restore has switched (or is switching) the database of {target.id}; it can no longer "
                    "be cancelled. Restore the pre-restore backup to go back.",
                    commitTransaction=transaction,
                    copied=placement.copied,
                    deferred=placement.deferred,
                    extras=placement.extras,
                )
                context.report(detail="switching the database")

            try:
                self._databases.restore(
                    target.database,
                    dump,
                    before_commit=before_commit,
                    row_counts=read_row_counts(self._backup_store, backup),
                    stop=context.stopping,
                    on_load=lambda done, tables: context.report(tables_done=done, tables_total=tables),
                )
            except RestoreStopped:
                context.check()  # says why: a cancel, or the lease lost
                raise
            finally:
                stop.set()  # when the database part failed first, stop copying
                wait([placing])
        crash_point("restore.database.after_commit")
        context.output["committed"] = True

    def _copy_files(
        self,
        context: StepContext,
        backup: Backup,
        target: Environment,
        *,
        replace_different: bool,
        stop: threading.Event | None = None,
    ) -> Placement:
        """Copy into the target what it lacks (and, with ``replace_different``, what differs), checking
        each content object against the file list."""
        store = self._file_store(target)
        prefix = target.files.prefix
        total = backup.file_count or 0
        done = copied = deferred = 0
        extras = bytes_done = 0
        bytes_total = backup.files_size

        def files_progress() -> dict[str, int | None]:
            return {
                "files_done": done,
                "files_total": total,
                "file_bytes_done": bytes_done,
                "file_bytes_total": bytes_total,
            }

        def extra(blob: BlobInfo) -> None:  # a file document of the target's that the backup does not have
            nonlocal extras
            extras += bool(_UUID.match(blob.name[len(prefix) :]))

        target_files = SortedStream(
            prefetched(store.list(prefix, with_metadata=True, page_size=5000)),
            lambda blob: blob.name[len(prefix) :],
            on_skip=extra,
        )

        def place(entry: FileEntry, overwrite: bool) -> bool:
            # One request per file: the copy. The content object is neither looked up nor found by
            # listing the namespace's content store (a restore grows with its backup, not with every
            # environment of the namespace); what arrived is checked against the file list afterwards,
            # from the target's own listing (see _check_placed), before anything is committed.
            try:
                return store.copy_from_url(
                    prefix + entry.uuid,
                    self._content.copy_source_url(entry.object, store),
                    metadata={"md5": entry.md5, PLACED_BY: context.operation.id},
                    overwrite=overwrite,
                )
            except SourceChanged as error:  # the content object is not there (a 404 of the copy's source)
                raise VerificationFailed(
                    f"File document {entry.uuid} of backup {backup.id} is missing from the store."
                ) from error

        with ThreadPoolExecutor(self._copy_concurrency, thread_name_prefix="restore-copy") as pool:
            pending: deque[Future[bool]] = deque()
            for entry in read_file_list(self._backup_store, backup):
                if stop is not None and stop.is_set():
                    raise Fault("The restore stopped while placing file documents.", transient=True)
                existing = target_files.seek(entry.uuid)
                same = existing is not None and existing.size == entry.size and _blob_md5(existing) == entry.md5
                if existing is None or (replace_different and not same):
                    pending.append(pool.submit(place, entry, existing is not None))
                    copied += 1
                elif not same:  # left for step 3: nothing the current database uses changes before the switch
                    deferred += 1
                done += 1
                bytes_done += entry.size
                while len(pending) > 2 * self._copy_concurrency:  # a sliding window of copies in flight
                    pending.popleft().result()
                if done % 100 == 0:
                    context.report(done=done, total=total, detail="placing file documents", **files_progress())
                if copied == 1 and not replace_different:
                    crash_point("restore.files.placing")
            while pending:
                pending.popleft().result()
        target_files.drain()
        if done != total:
            raise VerificationFailed(f"Backup {backup.id} lists {done} file documents, not {total}.")
        if copied:
            self._check_placed(backup, store, prefix, context.operation.id)
        context.report(done=done, total=total, **files_progress())
        return Placement(copied, deferred, extras)

    def _check_placed(self, backup: Backup, store: BlobStore, prefix: str, restore_id: str) -> None:
        """Every file document this restore copied has the size and MD5 its backup's file list says: read
        from the target's listing (a page per 5,000 files), merged with the file list. A copy keeps its
        content object's Content-MD5; for the rare object without one (its source blob had none, so the
        backup hashed it), the object's own recorded MD5 is read."""
        placed = SortedStream(
            store.list(prefix, with_metadata=True, page_size=5000), lambda blob: blob.name[len(prefix) :]
        )
        for entry in read_file_list(self._backup_store, backup):
            blob = placed.seek(entry.uuid)
            if blob is None or blob.metadata.get(PLACED_BY) != restore_id:
                continue  # not this restore's copy: identical already, or left for after the switch
            md5 = blob.md5
            if md5 is None:
                content = self._content.info(entry.object)
                md5 = _blob_md5(content) if content is not None else None
            if blob.size != entry.size or md5 != entry.md5:
                raise VerificationFailed(f"File document {entry.uuid} of backup {backup.id} does not match its MD5.")

    # -- 3 ---------------------------------------------------------------------------------------

    def clean_up_files(self, context: StepContext) -> None:
        """Step 3: replace the file documents that differed, and remove those the restored database does not
        refer to."""
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
        with self._databases.referenced_files(target.database, target.file_document_query) as known:
            keep = SortedStream(known, str)
            for blob in store.list(prefix, page_size=5000):
                name = blob.name[len(prefix) :]
                if not _UUID.match(name):
                    continue  # not a file document: not ours to remove
                if not keep.contains(name):
                    store.delete(blob.name)
                    removed += 1
                checked += 1
                if checked % 500 == 0:
                    context.report(done=checked, total=max(total, checked), detail=f"{removed} removed so far")
        context.output.update(replaced=replaced, removed=removed)
        context.report(done=checked, total=checked, detail=f"{replaced} replaced, {removed} removed")

    # -- 4, and the undo -----------------------------------------------------------------------

    def unlock(self, context: StepContext) -> None:
        """Step 4: unlock the target (Stopped) and log FINISHED."""
        operation = context.operation
        entry_id = context.remember("activityEntry", new_entry_id)
        self._release(operation)
        pre_restore = operation.output("pre_restore_backup", "preRestoreSnapshotId")
        placed = operation.step("switch").output
        cleaned = operation.step("clean_up_files").output
        self._record(
            operation,
            Outcome.FINISHED,
            f"Restored {_what(operation)}: "
            f"{placed.get('copied', 0) + cleaned.get('replaced', 0)} file documents copied, "
            f"{cleaned.get('removed', 0)} removed. Pre-restore backup: {pre_restore}.",
            entry_id,
        )

    def undo(self, context: StepContext) -> None:
        """A failed or cancelled restore. Before the database switched, every file document the restore
        copied goes, so the target is exactly as it was; after it, those its database does not refer to.
        Then the pre-restore backup (if still being made) is cancelled, the target unlocked, the backup
        released, and the outcome logged. Every part is safe to repeat."""
        operation = context.operation
        cancelled = operation.ending is OperationStatus.CANCELLED
        entry_id = context.remember("activityEntry", new_entry_id)
        switched = self._database_switched(operation)
        context.report(detail="removing the file documents the restore copied")
        removed = context.output.get("removedFiles")
        if removed is None:
            removed = self._remove_added_files(operation, keep_referenced=switched)
            context.checkpoint(removedFiles=removed)
        crash_point("restore.undo")
        self._cancel_pre_restore_backup(operation)
        self._cancel_backup_of_the_past(operation)
        self._release(operation)
        note = f" The {removed} file documents it had added were removed." if removed else ""
        if switched:
            note += " The database had been replaced by the backup's; restore the pre-restore backup to go back."
        if cancelled:
            who = operation.cancel_requested_by
            actor = Principal(who.id, who.name) if who else None
            message = (
                f"Restore of {_what(operation, short=True)} cancelled by {(who.name or who.id) if who else 'a user'}"
                f"; the target is as it was.{note}"
            )
            self._record(operation, Outcome.CANCELLED, message, entry_id, actor=actor)
        else:
            message = f"Restore of {_what(operation, short=True)} failed at '{operation.error_step}': {operation.error}"
            self._record(operation, Outcome.FAILED, message + note, entry_id)

    def _database_switched(self, operation: Operation) -> bool:
        """Did the restore's COMMIT happen? Asked of the server when an attempt died around it."""
        switch = operation.step("switch").output
        if switch.get("committed"):
            return True
        transaction = switch.get("commitTransaction")
        if transaction is None:
            return False
        target = self._environments.get(operation.environment_id)
        committed = self._databases.transaction_committed(target.database, int(transaction))
        if committed is None:
            raise Fault("The database switch of the restore has not ended yet.", transient=True)
        return committed

    def _cancel_pre_restore_backup(self, operation: Operation) -> None:
        backup_id = operation.output("pre_restore_backup", "preRestoreSnapshotId")
        if backup_id is not None:
            self._cancel_backup(operation, operation.environment_id, backup_id)

    def _cancel_backup_of_the_past(self, operation: Operation) -> None:
        """Its own undo stops the temporary instance it may have started. A finished one is kept: it is a
        backup like any other (the restore only releases it)."""
        if operation.parameters.get(POINT_IN_TIME):
            self._cancel_backup(operation, operation.parameters["sourceEnvironmentId"], str(operation.backup_id))

    def _cancel_backup(self, operation: Operation, environment_id: str, backup_id: str) -> None:
        backup = self._backup_catalog.find(environment_id, backup_id)
        if backup is None or backup.status is not BackupStatus.PROCESSING or backup.operation_id is None:
            return
        who = operation.cancel_requested_by or operation.created_by
        # Refused when it has just finished, or passed the point where it can be cancelled: then it is kept.
        with contextlib.suppress(Conflict):
            self._engine.cancel(backup.operation_id, Actor(who.id, who.name))

    def _record(
        self,
        operation: Operation,
        outcome: Outcome,
        message: str,
        entry_id: str,
        *,
        actor: Principal | None = None,
    ) -> None:
        """Log the restore in the target's activity log and, when the backup is another
        environment's, in that one's too: its data went somewhere."""
        actor = actor or Principal(operation.created_by.id, operation.created_by.name)
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
                backup_id=operation.backup_id,
                operation_id=operation.id,
                entry_id=entry_id,
            )

    def _remove_added_files(self, operation: Operation, *, keep_referenced: bool) -> int:
        """Remove the file documents this restore copied (their metadata names it) — only those the
        target's database does not refer to when ``keep_referenced``. Files that were there before the
        restore are never touched: a restore copies a file only where the target had none, until the
        database has switched."""
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
        if not keep_referenced:
            for name in added:
                store.delete(prefix + name)
                removed += 1
            return removed
        with self._databases.referenced_files(target.database, target.file_document_query) as known:
            for name in missing_from(added, known):
                store.delete(prefix + name)
                removed += 1
        return removed

    def _release(self, operation: Operation) -> None:
        """Unlock the target (Stopped) if this restore holds it, and release the backup."""
        for _ in range(8):
            environment = self._environments.find(operation.environment_id)
            if environment is None or environment.active_restore_id != operation.id:
                break
            try:
                self._environments.save(
                    replace(
                        environment, state=EnvironmentState.STOPPED, active_restore_id=None, updated_on=self._clock()
                    )
                )
                break
            except StaleRecord:
                continue
        else:
            raise Fault(f"Environment {operation.environment_id} kept changing while being unlocked.", transient=True)
        self._backup_catalog.release(
            operation.parameters["sourceEnvironmentId"], str(operation.backup_id), user_of(operation)
        )


def user_of(operation: Operation) -> str:
    """How a restore names itself in a backup's ``inUseBy``."""
    return f"restore {operation.id}"


def _instant(operation: Operation) -> str:
    return f"{operation.parameters[POINT_IN_TIME].replace('T', ' ').replace('+00:00', '')} UTC"


def _what(operation: Operation, *, short: bool = False) -> str:
    """What a restore restores, as its activity entries say it (``short``: a backup without its environment)."""
    source = operation.parameters["sourceEnvironmentId"]
    if operation.parameters.get(POINT_IN_TIME):
        return f"{source} as of {_instant(operation)} (backup {operation.backup_id})"
    return f"backup {operation.backup_id}" + ("" if short else f" of {source}")
