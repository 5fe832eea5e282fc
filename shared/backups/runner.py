"""Making one backup: claim it, dump the database and collect its file documents from one
database snapshot, write the manifest, finish — or fail cleanly, leaving no partial data."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from azure.core.exceptions import AzureError, ResourceNotFoundError

from shared.adapters.blobs import BlobStore, BlockWriter
from shared.adapters.postgres import DumpProcess, ExportedSnapshot, PostgresGateway, tool_dir
from shared.backups.files import FileCollector, FileStats, MissingFileDocument
from shared.backups.layout import DUMP, FILES, MANIFEST, FileEntry, manifest_head, snapshot_folder
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.snapshots import SnapshotCatalog
from shared.clock import Clock
from shared.domain.activity import Action, Outcome
from shared.domain.environments import Environment
from shared.domain.snapshots import Snapshot, SnapshotStatus, Tier
from shared.errors import AppError
from shared.faults import Fault, describe, is_transient
from shared.identity import Principal
from shared.leases import Lease, LeaseLost
from shared.services.activity import ActivityLog

logger = logging.getLogger("appbackups.backup")


class RetryLater(Exception):
    """The backup hit a transient fault; the queue delivers the message again."""


@dataclass(frozen=True)
class BackupSettings:
    max_attempts: int = 3
    lease: timedelta = timedelta(minutes=2)
    copy_concurrency: int = 16
    block_size: int = 8 * 1024 * 1024
    postgres_bin_dir: str | None = None


@dataclass
class Stores:
    snapshots: BlobStore
    content: BlobStore
    archives: BlobStore
    uploads: BlobStore
    maintenance: BlobStore
    file_store: Callable[[Environment], BlobStore]


@dataclass
class BackupHooks:
    """Test seams: called at fixed points of a backup."""

    after_snapshot_exported: Callable[[ExportedSnapshot], None] | None = None
    after_first_dump_chunk: Callable[[], None] | None = None
    before_finish: Callable[[Snapshot], None] | None = None


class BackupRunner:
    def __init__(
        self,
        snapshots: SnapshotCatalog,
        environments: EnvironmentCatalog,
        activity: ActivityLog,
        stores: Stores,
        databases: PostgresGateway,
        settings: BackupSettings,
        clock: Clock,
        hooks: BackupHooks | None = None,
        last_sweep: Callable[[str], datetime | None] | None = None,
    ) -> None:
        self._last_sweep = last_sweep
        self._snapshots = snapshots
        self._environments = environments
        self._activity = activity
        self._stores = stores
        self._databases = databases
        self._settings = settings
        self._clock = clock
        self.hooks = hooks or BackupHooks()

    # -- the unit of work ------------------------------------------------------------------

    def run(
        self, environment_id: str, snapshot_id: str, on_files: Callable[[int, int], None] | None = None
    ) -> Snapshot | None:
        """Make the backup, if it still needs making. Raises RetryLater on a transient fault
        while attempts remain (the queue delivers the message again). ``on_files(collected, total)``
        follows the file documents, for a caller that shows its own progress."""
        snapshot = self._claim(environment_id, snapshot_id)
        if snapshot is None:
            return None
        lease = Lease(
            snapshot,
            save=self._snapshots.save,
            extend=lambda record, until: replace(record, lease_until=until),
            duration=self._settings.lease,
            clock=self._clock,
            label=f"backup {snapshot_id}",
        )
        with lease:
            try:
                return self._make(lease, on_files)
            except LeaseLost:
                logger.warning("backup %s was taken over or deleted; this attempt stops", snapshot_id)
                self._remove_data(snapshot)
                return None
            except Exception as error:
                return self._handle_failure(lease, error)

    def _claim(self, environment_id: str, snapshot_id: str) -> Snapshot | None:
        snapshot = self._snapshots.find(environment_id, snapshot_id)
        if snapshot is None or snapshot.status is not SnapshotStatus.PROCESSING:
            return None  # deleted, or already finished or failed: a duplicate message
        now = self._clock()
        if snapshot.lease_owner and snapshot.lease_until and snapshot.lease_until > now:
            return None  # another worker holds it; its own message stays with it
        if snapshot.attempts >= self._settings.max_attempts:
            self._fail(snapshot, f"{snapshot.status_message} Gave up after {snapshot.attempts} attempts.".strip())
            return None
        claimed = replace(
            snapshot,
            attempts=snapshot.attempts + 1,
            lease_owner=uuid.uuid4().hex,
            lease_until=now + self._settings.lease,
            progress="starting",
        )
        try:
            return self._snapshots.save(claimed)
        except AppError:
            return None  # another worker claimed it first

    # -- making it -----------------------------------------------------------------------

    def _make(self, lease: Lease[Snapshot], on_files: Callable[[int, int], None] | None) -> Snapshot:
        snapshot = lease.record
        started = time.monotonic()
        environment = self._environments.get(snapshot.environment_id)
        if snapshot.tier is not Tier.PRE_RESTORE:
            environment.ensure_can_back_up()
        parameters = self._databases.parameters(environment.database)
        folder = snapshot_folder(snapshot.namespace, snapshot.environment_id, snapshot.id)
        store = self._stores.snapshots
        dump_writer = store.writer(folder + DUMP, block_size=self._settings.block_size)
        files_writer = store.writer(folder + FILES, block_size=4 * 1024 * 1024, parallelism=2)
        source = self._stores.file_store(environment)
        if not source.exists():
            raise MissingFileDocument(
                f"The file-document container {environment.files.container!r} does not exist in its storage account."
            )

        total = 0

        def report(stats: FileStats) -> None:
            progress = f"file documents: {stats.count} of {total} collected, {stats.copied} new"
            lease.publish(lambda record: replace(record, progress=progress))
            if on_files is not None:
                on_files(stats.count, total)
            lease.check()

        collector = FileCollector(
            source,
            self._stores.content,
            snapshot.namespace,
            concurrency=self._settings.copy_concurrency,
            on_progress=report,
        )
        try:
            with ExportedSnapshot(parameters) as exported, ThreadPoolExecutor(1, thread_name_prefix="dump") as pool:
                if self.hooks.after_snapshot_exported:
                    self.hooks.after_snapshot_exported(exported)
                bin_dir = tool_dir(exported.server_version, self._settings.postgres_bin_dir)
                dump = DumpProcess(parameters, exported.snapshot_id, bin_dir)
                dumping = pool.submit(self._stream_dump, dump, dump_writer)
                try:
                    database_size = exported.database_size()
                    total = exported.count_file_documents(environment.file_document_query)
                    uuids = exported.file_document_uuids(environment.file_document_query)
                    for entry in collector.collect(uuids, environment.files.prefix, self._previous_files(snapshot)):
                        files_writer.write(entry.to_line())
                    dumping.result()
                except BaseException:
                    dump.cancel()
                    raise
            lease.check()
            dump_writer.commit(metadata={"sha256": dump_writer.sha256}, content_type="application/octet-stream")
            files_writer.commit(
                metadata={"sha256": files_writer.sha256, "count": str(collector.stats.count)},
                content_type="application/x-ndjson",
            )
        except BaseException:
            dump_writer.abort()
            files_writer.abort()
            raise
        self._check_against_sweeps(snapshot, folder + FILES, source, environment.files.prefix)

        stats = collector.stats
        now = self._clock()
        results = {
            "dump_size": dump_writer.size,
            "dump_sha256": dump_writer.sha256,
            "database_size": database_size,
            "file_count": stats.count,
            "files_size": stats.size,
            "files_copied": stats.copied,
            "bytes_copied": stats.copied_bytes,
        }
        manifest = {
            **manifest_head(snapshot, now, snapshot.model_version, snapshot.deployment_package),
            "database": {
                "dump": DUMP,
                "format": "pg_dump --format=custom --no-owner --no-privileges",
                "dumpSize": dump_writer.size,
                "dumpSha256": dump_writer.sha256,
                "databaseSize": database_size,
            },
            "files": {
                "list": FILES,
                "count": stats.count,
                "size": stats.size,
                "listSha256": files_writer.sha256,
                "copied": stats.copied,
                "copiedBytes": stats.copied_bytes,
                "hashed": stats.hashed,
            },
            "durationSeconds": round(time.monotonic() - started, 3),
        }
        store.put(
            folder + MANIFEST, json.dumps(manifest, indent=2).encode(), content_type="application/json", overwrite=True
        )
        if self.hooks.before_finish:
            self.hooks.before_finish(lease.record)
        finished = lease.commit(lambda current: current.finished(now, **results), release=True)
        self._activity.record(
            finished.environment_id,
            Action.BACKUP,
            Outcome.FINISHED,
            _creator(finished),
            f"{finished.tier.value.capitalize()} backup finished: database dump {dump_writer.size} bytes, "
            f"{stats.count} file documents ({stats.copied} new).",
            snapshot_id=finished.id,
        )
        logger.info(
            "backup %s of %s finished: dump %d bytes, %d files (%d copied, %d reused)",
            finished.id,
            finished.environment_id,
            dump_writer.size,
            stats.count,
            stats.copied,
            stats.count - stats.copied,
        )
        return finished

    def _check_against_sweeps(self, snapshot: Snapshot, files: str, source: BlobStore, prefix: str) -> None:
        """If pruning swept this namespace while the backup was being made, a sweep may have judged
        an object this backup reuses unreferenced: copy any that is gone again from the source."""
        swept = self._last_sweep(snapshot.namespace) if self._last_sweep else None
        if swept is None or swept < snapshot.created_on:
            return
        content = self._stores.content
        listing = content.list(f"{snapshot.namespace}/", page_size=5000)
        present = next(listing, None)
        restored = 0
        for line in self._stores.snapshots.read_lines(files):
            if not line.strip():
                continue
            entry = FileEntry.from_line(line)
            while present is not None and present.name < entry.object:
                present = next(listing, None)
            if present is None or present.name != entry.object:
                content.copy_from_url(
                    entry.object,
                    source.copy_source_url(prefix + entry.uuid, content),
                    source_etag=entry.source_etag,
                    metadata={"md5": entry.md5},
                )
                restored += 1
        if restored:
            logger.warning("backup %s: %d content objects swept meanwhile were copied again", snapshot.id, restored)

    def _stream_dump(self, dump: DumpProcess, writer: BlockWriter) -> None:
        for number, chunk in enumerate(dump.chunks(self._settings.block_size)):
            writer.write(chunk)
            if number == 0 and self.hooks.after_first_dump_chunk:
                self.hooks.after_first_dump_chunk()
        dump.wait()

    def _previous_files(self, snapshot: Snapshot) -> Iterator[FileEntry]:
        """The file list of the environment's latest finished backup: what the store is known to hold."""
        previous = self._snapshots.latest_finished(snapshot.environment_id)
        if previous is None:
            return iter(())
        name = snapshot_folder(previous.namespace, previous.environment_id, previous.id) + FILES

        def entries() -> Iterator[FileEntry]:
            try:
                for line in self._stores.snapshots.read_lines(name):
                    if line.strip():
                        yield FileEntry.from_line(line)
            except ResourceNotFoundError:
                return

        return entries()

    # -- failing cleanly -------------------------------------------------------------------

    def _handle_failure(self, lease: Lease[Snapshot], error: Exception) -> Snapshot | None:
        snapshot = lease.record
        message = describe(error)
        self._remove_data(snapshot)
        if is_transient(error) and snapshot.attempts < self._settings.max_attempts:
            logger.warning("backup %s attempt %d failed, will retry: %s", snapshot.id, snapshot.attempts, message)
            try:
                lease.commit(
                    lambda current: replace(
                        current,
                        status_message=f"Attempt {current.attempts} of {self._settings.max_attempts} failed: {message}",
                        lease_owner=None,
                        lease_until=None,
                        progress="waiting to retry",
                    ),
                    release=True,
                )
            except LeaseLost:
                return None
            raise RetryLater(message) from error
        if not isinstance(error, AppError | Fault):
            logger.error("backup %s failed", snapshot.id, exc_info=error)
        try:
            failed = lease.commit(lambda current: current.failed(self._clock(), message), release=True)
        except LeaseLost:
            return None
        self._log_failure(failed)
        return failed

    def _fail(self, snapshot: Snapshot, message: str) -> Snapshot | None:
        try:
            failed = self._snapshots.save(snapshot.failed(self._clock(), message))
        except AppError:
            return None
        self._remove_data(failed)
        self._log_failure(failed)
        return failed

    def _log_failure(self, failed: Snapshot) -> None:
        logger.warning("backup %s of %s failed: %s", failed.id, failed.environment_id, failed.status_message)
        self._activity.record(
            failed.environment_id,
            Action.BACKUP,
            Outcome.FAILED,
            _creator(failed),
            f"{failed.tier.value.capitalize()} backup failed: {failed.status_message}",
            snapshot_id=failed.id,
        )

    def _remove_data(self, snapshot: Snapshot) -> None:
        folder = snapshot_folder(snapshot.namespace, snapshot.environment_id, snapshot.id)
        try:
            self._stores.snapshots.delete_prefix(folder)
        except AzureError:
            logger.warning("could not remove the partial data of backup %s; pruning will", snapshot.id, exc_info=True)

    def give_up(self, environment_id: str, snapshot_id: str, reason: str) -> Snapshot | None:
        """Fail a backup whose work was abandoned (its message was poisoned, or its worker vanished)."""
        snapshot = self._snapshots.find(environment_id, snapshot_id)
        if snapshot is None or snapshot.status is not SnapshotStatus.PROCESSING:
            return None
        if snapshot.lease_until and snapshot.lease_until > self._clock():
            return None  # a worker still holds it and will finish or fail it
        return self._fail(snapshot, reason)

    def reap(self, older_than: timedelta) -> list[Snapshot]:
        """Fail backups left Processing with no live worker: never claimed for ``older_than``, or
        whose lease ran out that long ago."""
        now = self._clock()
        reaped = []
        for snapshot in self._snapshots.processing():
            if snapshot.tier is Tier.UPLOADED:
                continue  # made by its upload operation, which the operation reaper watches
            last_sign_of_life = snapshot.lease_until or snapshot.created_on
            if now - last_sign_of_life < older_than:
                continue
            reason = (
                "The backup's worker stopped responding and the backup was not resumed."
                if snapshot.lease_owner or snapshot.attempts
                else "The backup was never picked up by a worker."
            )
            failed = self.give_up(snapshot.environment_id, snapshot.id, reason)
            if failed is not None:
                reaped.append(failed)
        return reaped


def _creator(snapshot: Snapshot) -> Principal:
    return Principal(id=snapshot.created_by.id, name=snapshot.created_by.name)
