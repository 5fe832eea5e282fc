"""The backup operation's steps, on the one engine. Each is safe to run again after a crash.

1. dump — from one database snapshot: pg_dump streamed into staged blocks (with its SHA-256), and the
   file documents the database refers to collected into the namespace's content store (server-side copies
   of only what the store lacks): incrementally, the previous backup's file list as the index and only new
   uuids read from the file store, or, when a full reconciliation is due or asked for, a merge of the
   database's uuids, a listing of the file store and that list); the dump and the file list are committed
   together. A repeat starts over: nothing of an earlier attempt is trusted. A backup of the
   past reads the database on a temporary instance as of its instant (recorded as soon as it exists, and
   released at the step's end, by a repeat, by the undo and by the reaper) and takes the file documents
   that database refers to from their captures.
2. finish — the manifest, then (past the point of no return) the backup becomes Finished and is logged.
Undo: the backup's partial data goes, and the backup becomes Failed (or Cancelled), logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared.adapters.blobs import BlobStore
from shared.adapters.pointintime import PointInTimeSource, TemporaryInstance
from shared.adapters.postgres import Databases, DatabaseSnapshot, DumpStream
from shared.adapters.stores import Stores
from shared.backups.files import FileCollector, FileStats, MissingFileDocument
from shared.backups.layout import (
    DUMP,
    FILES,
    MANIFEST,
    ROWS,
    FileEntry,
    backup_folder,
    manifest_head,
    read_file_list,
)
from shared.backups.past import PastFileCollector, PastFiles
from shared.backups.slots import ServerSlots, server_of
from shared.catalog.activity import ActivityLog, new_entry_id
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain.access import Principal
from shared.domain.activity import Action, Outcome
from shared.domain.backups import Backup, BackupStatus, Tier
from shared.domain.environments import Environment, MissingFiles
from shared.domain.operations import Operation, OperationStatus
from shared.dumps.store import ChunkRef, previous_chunks, read_chunk_index
from shared.dumps.writer import FORMAT, DumpWriter, after_first, dump_writer
from shared.faults import Fault, crash_point
from shared.merges import SortedStream
from shared.operations.engine import OperationDefinition, StepContext, StepDefinition, WaitLater
from shared.streams import bounded_map

logger = logging.getLogger("appbackups.backup")

KIND = "backup"
TEMPORARY_INSTANCE = "temporaryInstance"  # the dump step's record of the instance it started to read the past


def recorded_instance(output: dict[str, object]) -> TemporaryInstance | None:
    found = output.get(TEMPORARY_INSTANCE)
    if not isinstance(found, dict):
        return None
    return TemporaryInstance.from_record(found)


@dataclass(frozen=True)
class BackupSettings:
    """What the backup steps take from the app settings (shared/config.py states the defaults)."""

    max_attempts: int
    copy_concurrency: int
    block_size: int
    chunked_dumps: bool = True  # new backups store their dump as chunks (shared/dumps)
    slot_wait_seconds: float = 3  # a backup whose database server has no free slot looks again after this (and a bit)
    file_reconciliation_days: int = 7  # a full listing of the file store when the last is this old (0: always)


@dataclass
class BackupHooks:
    """Test seams: called at fixed points of a backup."""

    after_snapshot_exported: Callable[[DatabaseSnapshot], None] | None = None
    after_first_dump_chunk: Callable[[], None] | None = None
    after_dump_stored: Callable[[], None] | None = None  # the dump and the file list are committed
    before_finish: Callable[[Backup], None] | None = None


def creator(backup: Backup) -> Principal:
    return Principal(id=backup.created_by.id, name=backup.created_by.name)


class BackupSteps:
    def __init__(
        self,
        backup_catalog: BackupCatalog,
        environments: EnvironmentCatalog,
        activity: ActivityLog,
        stores: Stores,
        databases: Databases,
        settings: BackupSettings,
        clock: Clock,
        last_sweep: Callable[[str], datetime | None] | None = None,
        point_in_time: PointInTimeSource | None = None,
        past_files: PastFiles | None = None,
        slots: ServerSlots | None = None,
    ) -> None:
        self.slots = slots
        self._point_in_time = point_in_time
        self._past_files = past_files
        self._backup_catalog = backup_catalog
        self._environments = environments
        self._activity = activity
        self._stores = stores
        self._databases = databases
        self._settings = settings
        self._clock = clock
        self._last_sweep = last_sweep
        self.hooks = BackupHooks()

    def definition(self) -> OperationDefinition:
        return OperationDefinition(
            kind=KIND,
            steps=(
                StepDefinition("dump", "Dump the database and collect its file documents", self.dump),
                StepDefinition("finish", "Write the manifest and finish the backup", self.finish),
            ),
            undo=StepDefinition("undo", "Remove the backup's partial data", self.undo),
            max_attempts=self._settings.max_attempts,
            on_reaped=self.release_instance,
        )

    def _backup(self, operation: Operation) -> Backup:
        return self._backup_catalog.get(operation.environment_id, str(operation.backup_id))

    # -- 1 ---------------------------------------------------------------------------------------

    def dump(self, context: StepContext) -> None:
        backup = self._backup(context.operation)
        if backup.operation_id != context.operation.id or backup.status is not BackupStatus.PROCESSING:
            raise Fault(f"Backup {backup.id} is {backup.status.value} and not this operation's to make.")
        started = time.monotonic()
        environment = self._environments.get(backup.environment_id)
        past = backup.point_in_time
        if backup.tier is not Tier.PRE_RESTORE and past is None:
            environment.ensure_can_back_up()
        self._release_recorded(context)  # what an earlier attempt of this step left running, if it died
        server = server_of(environment.database) if past is None and self.slots is not None else None
        if server is not None and self.slots is not None:
            self._take_slot(context, server)
        try:
            self._dump(context, backup, environment, past, started)
        finally:
            if server is not None and self.slots is not None:
                self.slots.release(server, context.operation.id)

    def _take_slot(self, context: StepContext, server: str) -> None:
        """One of the server's backup slots, or the step waits (re-queued, no attempt counted) for one."""
        assert self.slots is not None
        if self.slots.take(server, context.operation.id) is not None:
            return
        waiting = f"waiting for a slot on {server}"
        context.report(detail=waiting)
        wait = self._settings.slot_wait_seconds
        spread = int(hashlib.sha256(context.operation.id.encode()).hexdigest()[:4], 16) % max(1, int(wait) + 1)
        raise WaitLater(wait + spread, waiting)

    def _dump(
        self, context: StepContext, backup: Backup, environment: Environment, past: datetime | None, started: float
    ) -> None:
        folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
        store = self._stores.backups
        dumped = dump_writer(
            store,
            self._stores.content,
            backup.namespace,
            folder,
            chunked=self._settings.chunked_dumps,
            block_size=self._settings.block_size,
            previous=self._previous_chunks(backup),
        )
        files_writer = store.writer(folder + FILES, block_size=4 * 1024 * 1024, parallelism=2)
        source = self._stores.file_store(environment)
        if past is None and not source.exists():
            raise MissingFileDocument(
                f"The file-document container {environment.files.container!r} does not exist in its storage account."
            )
        total = 0

        def report(stats: FileStats) -> None:
            context.report(
                done=stats.count,
                total=total,
                files_done=stats.count,
                files_total=total,
                file_bytes_done=stats.size,
                detail=f"file documents: {stats.count} of {total}, {stats.copied} new",
            )
            if stats.count == 1:
                crash_point("backup.files.copying")

        strict = environment.missing_files is MissingFiles.FAIL
        collector: FileCollector | PastFileCollector
        index, reconciled_on, last_reconciliation = None, None, None
        if past is None:
            index, reconciled_on = self._file_index(context, backup)
            last_reconciliation = reconciled_on or (index.last_reconciliation if index else None)
            collector = FileCollector(
                source,
                self._stores.content,
                backup.namespace,
                concurrency=self._settings.copy_concurrency,
                on_progress=report,
                strict=strict,
            )
        else:
            if self._past_files is None:
                raise Fault("This service captures no file documents, so it cannot back up the past.")
            collector = PastFileCollector(self._past_files, environment.id, past, on_progress=report, strict=strict)
        try:
            with (
                self._snapshot(context, environment, past) as exported,
                ThreadPoolExecutor(1, thread_name_prefix="dump") as pool,
            ):
                if self.hooks.after_snapshot_exported:
                    self.hooks.after_snapshot_exported(exported)
                dump = exported.dump(compress=not dumped.chunked)
                dumping = pool.submit(self._stream_dump, dump, dumped)
                try:
                    database_size = exported.database_size()
                    server_version = exported.server_version
                    counting = time.monotonic()
                    rows = exported.table_rows()  # exact, as of the dump's snapshot: what a drill checks against
                    row_count_seconds = time.monotonic() - counting
                    not_carried = exported.not_carried()
                    total = exported.count_file_documents(environment.file_document_query)
                    context.report(
                        done=0,
                        total=total,
                        files_total=total,
                        detail="dumping the database and collecting file documents",
                    )
                    uuids = exported.file_document_uuids(environment.file_document_query)
                    entries = (
                        collector.collect(uuids, environment.files.prefix, iter(()))
                        if isinstance(collector, PastFileCollector)
                        else self._collect(collector, index, reconciled_on is not None, uuids, environment)
                    )
                    for entry in entries:
                        files_writer.write(entry.to_line())
                    dumping.result()
                except BaseException:
                    dump.cancel()
                    raise
            context.check()
            layout = dumped.commit()
            store.put(
                folder + ROWS,
                json.dumps({"serverVersion": server_version, "tables": rows}, indent=1).encode(),
                content_type="application/json",
                overwrite=True,
            )
            files_writer.commit(
                metadata={"sha256": files_writer.sha256, "count": str(collector.stats.count)},
                content_type="application/x-ndjson",
            )
        except BaseException:
            dumped.abort()
            files_writer.abort()
            raise
        if self.hooks.after_dump_stored:
            self.hooks.after_dump_stored()
        self._check_against_sweeps(backup, None if past else source, environment.files.prefix)
        stats = collector.stats
        context.output.update(
            dumpSize=dumped.size,
            dumpSha256=dumped.sha256,
            dumpLayout=layout,
            databaseSize=database_size,
            fileCount=stats.count,
            filesSize=stats.size,
            filesCopied=stats.copied,
            bytesCopied=stats.copied_bytes,
            filesHashed=stats.hashed,
            listSha256=files_writer.sha256,
            serverVersion=server_version,
            tableCount=len(rows),
            rowCount=sum(rows.values()),
            rowCountSeconds=round(row_count_seconds, 3),
            missingFiles=stats.missing,
            missingFileUuids=list(stats.missing_uuids),
            notCarried=not_carried,
            filesReconciled=None if past else reconciled_on is not None,
            filesReconciledOn=last_reconciliation.isoformat() if last_reconciliation else None,
            seconds=round(time.monotonic() - started, 3),
        )
        if stats.missing:
            logger.warning(
                "backup %s of %s: %d file documents referred to by the database have no content; the backup "
                "goes on without them",
                backup.id,
                backup.environment_id,
                stats.missing,
            )
        context.report(
            done=stats.count,
            total=stats.count,
            files_done=stats.count,
            files_total=stats.count,
            file_bytes_done=stats.size,
            file_bytes_total=stats.size,
            detail=f"{stats.count} file documents, {stats.copied} new",
        )

    @contextlib.contextmanager
    def _snapshot(
        self, context: StepContext, environment: Environment, instant: datetime | None
    ) -> Iterator[DatabaseSnapshot]:
        """The database now, or as it was at ``instant`` on a temporary instance: recorded on the operation as
        soon as it exists (so that a crash or a cancel leaves nothing running), released when the dump is done."""
        if instant is None:
            with self._databases.snapshot(environment.database) as exported:
                yield exported
            return
        if self._point_in_time is None or environment.point_in_time is None:
            raise Fault(f"Environment {environment.id} has no point-in-time recovery, so its past cannot be read.")

        def started(instance: TemporaryInstance) -> None:
            context.checkpoint(**{TEMPORARY_INSTANCE: instance.record()})

        context.report(detail=f"starting a temporary instance as of {instant.isoformat()}")
        with (
            self._point_in_time.as_of(
                environment.point_in_time.server,
                instant,
                environment.database.database,
                on_started=started,
                stop=context.stopping,
                login=environment.database,
            ) as connection,
            self._databases.snapshot(connection) as exported,
        ):
            yield exported
        context.output.pop(TEMPORARY_INSTANCE, None)  # stopped and removed by the context's end

    def _release_recorded(self, context: StepContext) -> None:
        instance = recorded_instance(context.output)
        if instance is None or self._point_in_time is None:
            return
        self._point_in_time.release(instance)
        context.output.pop(TEMPORARY_INSTANCE, None)
        context.checkpoint()

    def release_instance(self, operation: Operation) -> None:
        """The reaper's hook: the temporary instance a dead worker recorded goes (harmless if it is gone)."""
        if self._point_in_time is None or not operation.steps:
            return
        instance = recorded_instance(operation.step("dump").output)
        if instance is not None:
            logger.warning(
                "backup %s: releasing the temporary instance its worker left: %s", operation.backup_id, instance
            )
            self._point_in_time.release(instance)

    def _stream_dump(self, dump: DumpStream, writer: DumpWriter) -> None:
        def first() -> None:
            crash_point("backup.dump.streaming")
            if self.hooks.after_first_dump_chunk:
                self.hooks.after_first_dump_chunk()

        writer.write_all(after_first(dump.chunks(self._settings.block_size), first))
        dump.wait()

    def _file_index(self, context: StepContext, backup: Backup) -> tuple[Backup | None, datetime | None]:
        """The backup whose file list this one's is collected against (the environment's latest that listed its
        file store), and the time of this backup's full reconciliation, or None when it need not list the file
        store: none was asked for ({"reconcile": true}), there is an index, and its last listing is recent."""
        index = self._backup_catalog.latest_file_index(backup.environment_id)
        now = self._clock()
        last = index.last_reconciliation if index is not None else None
        due = last is None or now - last >= timedelta(days=self._settings.file_reconciliation_days)
        if context.operation.parameters.get("reconcile") or due:
            return index, now
        return index, None

    def _collect(
        self,
        collector: FileCollector,
        index: Backup | None,
        reconcile: bool,
        uuids: Iterator[str],
        environment: Environment,
    ) -> Iterator[FileEntry]:
        """The backup's file entries: a full reconciliation against a listing of the file store, or the
        index's entries with only the new uuids read from it."""
        previous = read_file_list(self._stores.backups, index, missing_ok=True) if index is not None else iter(())
        if reconcile:
            return collector.collect(uuids, environment.files.prefix, previous)
        return collector.collect_incremental(uuids, environment.files.prefix, previous)

    def _previous_chunks(self, backup: Backup) -> Iterator[ChunkRef] | None:
        """The chunk list of the environment's latest finished backup: chunks the store is known to hold —
        unless a sweep has run since this backup began (a repeat after the check against sweeps): then
        every chunk is packed again."""
        swept = self._last_sweep(backup.namespace) if self._last_sweep else None
        previous = self._backup_catalog.latest_finished(backup.environment_id)
        if previous is None or (swept is not None and swept >= backup.created_on):
            return None
        return previous_chunks(
            self._stores.backups, backup_folder(previous.namespace, previous.environment_id, previous.id)
        )

    def _check_against_sweeps(self, backup: Backup, source: BlobStore | None, prefix: str) -> None:
        """If pruning swept this namespace while the backup was being made, a sweep may have judged
        an object this backup reuses unreferenced: copy any that is gone again from the source. A backup of
        the past (no ``source``) has only its dump's chunks checked: its file documents' content objects are
        captures, which pruning keeps for the window, and the file store may hold other content now."""
        swept = self._last_sweep(backup.namespace) if self._last_sweep else None
        if swept is None or swept < backup.created_on:
            return
        if source is None:
            self._check_chunks_against_sweep(backup)
            return
        content = self._stores.content

        def put_back(entry: FileEntry) -> bool:
            # Looked up by name, not by listing the namespace's content store: the check grows with
            # this backup, not with every environment's files in the namespace.
            if content.info(entry.object) is not None:
                return False
            content.copy_from_url(
                entry.object,
                source.copy_source_url(prefix + entry.uuid, content),
                source_etag=entry.source_etag,
                metadata={"md5": entry.md5},
            )
            return True

        with ThreadPoolExecutor(self._settings.copy_concurrency, thread_name_prefix="sweep-check") as pool:
            entries = read_file_list(self._stores.backups, backup)
            restored = sum(bounded_map(pool, put_back, entries, 2 * self._settings.copy_concurrency))
        if restored:
            logger.warning("backup %s: %d content objects swept meanwhile were copied again", backup.id, restored)
        self._check_chunks_against_sweep(backup)

    def _check_chunks_against_sweep(self, backup: Backup) -> None:
        """A dump chunk (or pack) this backup reused may have been swept meanwhile: the dump is made again (the
        stream that had it is gone), and the repeat stores what is missing."""
        folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
        content = self._stores.content
        stored = heapq.merge(  # chunks (before packs) < packs: the index's name order
            content.list(f"{backup.namespace}/chunks/", page_size=5000),
            content.list(f"{backup.namespace}/packs/", page_size=5000),
            key=lambda blob: blob.name,
        )
        present = SortedStream(stored, lambda blob: blob.name)
        missing = sum(not present.contains(name) for name in read_chunk_index(self._stores.backups, folder))
        if missing:
            raise Fault(
                f"{missing} chunks of backup {backup.id}'s dump were swept while it was made; it is made again.",
                transient=True,
            )

    # -- 2 ---------------------------------------------------------------------------------------

    def finish(self, context: StepContext) -> None:
        operation = context.operation
        made = operation.step("dump").output
        backup = self._backup(operation)
        if backup.status is BackupStatus.FINISHED:
            return  # a repeat after the backup was finished and before the step was checkpointed
        now = self._clock()
        folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
        manifest = {
            **manifest_head(backup, now, backup.model_version, backup.deployment_package),
            **({"pointInTime": backup.point_in_time.isoformat()} if backup.point_in_time else {}),
            "database": {
                **made.get("dumpLayout", {"dump": DUMP, "format": FORMAT}),
                "dumpSize": made["dumpSize"],
                "dumpSha256": made["dumpSha256"],
                "databaseSize": made["databaseSize"],
                "notCarried": made.get("notCarried", []),
            },
            "files": {
                "list": FILES,
                "count": made["fileCount"],
                "size": made["filesSize"],
                "listSha256": made["listSha256"],
                "copied": made["filesCopied"],
                "copiedBytes": made["bytesCopied"],
                "hashed": made["filesHashed"],
                "missing": made.get("missingFiles", 0),
                "missingUuids": made.get("missingFileUuids", []),
                "reconciled": made.get("filesReconciled"),
                "reconciledOn": made.get("filesReconciledOn"),
            },
            "rows": {"list": ROWS, "tables": made.get("tableCount"), "rows": made.get("rowCount")},
            "durationSeconds": made["seconds"],
        }
        self._stores.backups.put(
            folder + MANIFEST, json.dumps(manifest, indent=2).encode(), content_type="application/json", overwrite=True
        )
        if self.hooks.before_finish:
            self.hooks.before_finish(backup)
        entry_id = context.remember("activityEntry", new_entry_id)
        context.point_of_no_return(f"Backup {backup.id} has been made; it can be deleted, not cancelled.")
        finished = self._backup_catalog.update(
            backup.environment_id,
            backup.id,
            lambda current: current.finished(
                now,
                dump_size=made["dumpSize"],
                dump_sha256=made["dumpSha256"],
                dump_stored_size=made.get("dumpLayout", {}).get("storedSize"),
                database_size=made["databaseSize"],
                file_count=made["fileCount"],
                files_size=made["filesSize"],
                files_copied=made["filesCopied"],
                bytes_copied=made["bytesCopied"],
                server_version=made.get("serverVersion"),
                table_count=made.get("tableCount"),
                row_count=made.get("rowCount"),
                missing_files=made.get("missingFiles", 0),
                missing_file_uuids=tuple(made.get("missingFileUuids", ())),
                not_carried=tuple(made.get("notCarried", ())),
                files_reconciled=made.get("filesReconciled"),
                files_reconciled_on=datetime.fromisoformat(made["filesReconciledOn"])
                if made.get("filesReconciledOn")
                else None,
                attempts=operation.step("dump").attempts,
            ),
        )
        missing = made.get("missingFiles", 0)
        warning = f" Warning: {missing} file documents had no content." if missing else ""
        if made.get("notCarried"):
            warning += f" Warning: the dump does not carry {'; '.join(made['notCarried'])}."
        self._activity.record(
            finished.environment_id,
            Action.BACKUP,
            Outcome.FINISHED,
            creator(finished),
            f"{_noun(finished)} finished: database dump {made['dumpSize']} bytes, "
            f"{made['fileCount']} file documents ({made['filesCopied']} new).{warning}",
            backup_id=finished.id,
            operation_id=operation.id,
            entry_id=entry_id,
        )
        logger.info(
            "backup %s of %s finished: dump %d bytes, %d files (%d copied)",
            finished.id,
            finished.environment_id,
            made["dumpSize"],
            made["fileCount"],
            made["filesCopied"],
        )

    # -- undo ------------------------------------------------------------------------------------

    def undo(self, context: StepContext) -> None:
        """The backup failed or was cancelled: its own data goes (file contents it already stored are
        complete, shared objects that pruning reclaims when nothing refers to them)."""
        operation = context.operation
        backup = self._backup_catalog.find(operation.environment_id, str(operation.backup_id))
        if self._point_in_time is not None:
            instance = recorded_instance(operation.step("dump").output)
            if instance is not None:
                self._point_in_time.release(instance)
        if backup is None or backup.operation_id != operation.id:
            return  # the backup row was never written, or belongs to other work
        if operation.step("dump").attempts:
            folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
            self._stores.backups.delete_prefix(folder)
        if backup.status is not BackupStatus.PROCESSING:
            return
        cancelled = operation.ending is OperationStatus.CANCELLED
        entry_id = context.remember("activityEntry", new_entry_id)
        if cancelled:
            who = operation.cancel_requested_by
            message = f"Cancelled by {who.name or who.id}." if who else "Cancelled."
            actor = Principal(who.id, who.name) if who else creator(backup)
            status, outcome = BackupStatus.CANCELLED, Outcome.CANCELLED
        else:
            message, actor = operation.error or "The backup failed.", creator(backup)
            status, outcome = BackupStatus.FAILED, Outcome.FAILED
        ended = self._backup_catalog.update(
            backup.environment_id,
            backup.id,
            lambda current: (
                replace(current.failed(self._clock(), message, status), attempts=operation.step("dump").attempts)
                if current.status is BackupStatus.PROCESSING
                else current
            ),
        )
        verb = "cancelled" if cancelled else "failed"
        if cancelled:
            logger.info("backup %s of %s cancelled: %s", ended.id, ended.environment_id, message)
        else:
            logger.warning("backup %s of %s failed: %s", ended.id, ended.environment_id, message)
        self._activity.record(
            ended.environment_id,
            Action.BACKUP,
            outcome,
            actor,
            f"{_noun(ended)} {verb}: {message}",
            backup_id=ended.id,
            operation_id=operation.id,
            entry_id=entry_id,
        )


def _noun(backup: Backup) -> str:
    """How the activity log names the backup: 'Manual backup', 'Point-in-time backup as of 2026-12-07 10:41:00 UTC'."""
    noun = f"{backup.tier.value.capitalize()} backup"
    if backup.point_in_time is not None:
        noun += f" as of {backup.point_in_time:%Y-%m-%d %H:%M:%S} UTC"
    return noun
