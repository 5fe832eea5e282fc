"""The upload operation, on the one engine: check the archive as a stream and store it, check the dump,
store the file documents, add the backup. Each step is safe to run again after a crash (a repeated
ingest starts over under the same names). Undo: a refused or failed archive leaves nothing behind but
the Failed backup row."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from shared.adapters.blobs import BlobStore, BlockWriter
from shared.adapters.postgres import DatabaseError, Databases
from shared.archives.reader import DUMP_MAGIC, GZIP_MAGIC, Entry, Refused, full_snapshot_entries
from shared.backups.layout import (
    DUMP,
    FILES,
    MANIFEST,
    FileEntry,
    backup_folder,
    content_object,
    manifest_head,
    read_file_list,
)
from shared.catalog.activity import ActivityLog, new_entry_id
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain.access import Principal
from shared.domain.activity import Action, Outcome
from shared.domain.backups import Backup, BackupStatus
from shared.domain.operations import Operation, OperationStatus
from shared.dumps.reader import DumpReader
from shared.dumps.store import STAGED_PACKS, ChunkRef, StoredChunks, chunk_object, pack_object, previous_chunks
from shared.dumps.writer import ChunkedDumpWriter
from shared.faults import crash_point
from shared.merges import SortedStream
from shared.operations.engine import OperationDefinition, StepContext, StepDefinition
from shared.streams import prefetched

logger = logging.getLogger("appbackups.uploads")

KIND = "upload"
SMALL_FILE = 4 * 1024 * 1024
READ_AHEAD_CHUNKS = 4  # of the client's download chunk size (4 MiB): memory stays bounded
MAX_METADATA = 1024 * 1024
_METADATA_FIELDS = ("modelVersion", "deploymentPackage", "dumpSize", "databaseSize", "filesSize", "duration")


def pending_folder(operation: Operation) -> str:
    return f".pending/{operation.id}/"


def pending_chunks(operation: Operation) -> str:
    """Where the dump's new chunks wait until the upload is added ('~' sorts after every file uuid)."""
    return f"{pending_folder(operation)}~chunks/"


class _FileList:
    """File entries in a temporary SQLite database: duplicates refused, read back in uuid order."""

    def __init__(self) -> None:
        self._file = tempfile.NamedTemporaryFile(prefix="appbackups-upload-", suffix=".sqlite")  # noqa: SIM115
        self._db = sqlite3.connect(self._file.name)
        self._db.execute("CREATE TABLE files (key TEXT PRIMARY KEY, uuid TEXT, size INTEGER, md5 TEXT)")

    def add(self, file_uuid: str, size: int, md5: str, path: str) -> None:
        try:
            self._db.execute("INSERT INTO files VALUES (?, ?, ?, ?)", (file_uuid.lower(), file_uuid, size, md5))
        except sqlite3.IntegrityError as error:
            raise Refused(f"The archive has file document {file_uuid} twice ({path}).") from error

    def ordered(self) -> Iterator[tuple[str, int, str]]:
        yield from self._db.execute("SELECT uuid, size, md5 FROM files ORDER BY uuid")

    def close(self) -> None:
        self._db.close()
        self._file.close()


class _Keeper:
    """Runs the small files' storage requests in the background, a bounded number at a time
    (their content is in memory while they wait), and counts the files kept."""

    def __init__(self, parallelism: int) -> None:
        self._pool = ThreadPoolExecutor(parallelism, thread_name_prefix="upload-keep")
        self._slots = threading.BoundedSemaphore(2 * parallelism)
        self._lock = threading.Lock()
        self._kept = 0
        self._error: BaseException | None = None

    def _done(self, future: Future[bool]) -> None:
        self._slots.release()
        error = future.exception()
        with self._lock:
            if error is not None:
                self._error = self._error or error
            else:
                self._kept += future.result()

    def submit(self, task: Callable[..., bool], *arguments: object) -> None:
        if self._error is not None:
            raise self._error
        self._slots.acquire()
        self._pool.submit(task, *arguments).add_done_callback(self._done)

    def count_kept(self) -> None:
        with self._lock:
            self._kept += 1

    def finish(self) -> int:
        self._pool.shutdown(wait=True)
        if self._error is not None:
            raise self._error
        return self._kept

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class UploadSteps:
    def __init__(
        self,
        *,
        backup_catalog: BackupCatalog,
        environments: EnvironmentCatalog,
        activity: ActivityLog,
        backup_store: BlobStore,
        content_store: BlobStore,
        upload_store: BlobStore,
        clock: Clock,
        block_size: int,
        expanded_limit: int,
        copy_concurrency: int,
        databases: Databases,
    ) -> None:
        self._backup_catalog = backup_catalog
        self._environments = environments
        self._activity = activity
        self._backup_store = backup_store
        self._content = content_store
        self._uploads = upload_store
        self._clock = clock
        self._block_size = block_size
        self._expanded_limit = expanded_limit
        self._copy_concurrency = copy_concurrency
        self._databases = databases

    def definition(self) -> OperationDefinition:
        return OperationDefinition(
            kind=KIND,
            steps=(
                StepDefinition("ingest", "Check the archive and store its dump", self.ingest),
                StepDefinition("verify_dump", "Check the database dump", self.verify_dump),
                StepDefinition("store_files", "Store the file documents", self.store_files),
                StepDefinition("finish", "Add the backup", self.finish),
            ),
            undo=StepDefinition("undo", "Remove what the upload stored", self.undo),
        )

    def _backup(self, operation: Operation) -> Backup:
        return self._backup_catalog.get(operation.environment_id, str(operation.backup_id))

    def _folder(self, operation: Operation) -> str:
        return backup_folder(operation.namespace, operation.environment_id, str(operation.backup_id))

    # -- 1 -----------------------------------------------------------------------------------

    def ingest(self, context: StepContext) -> None:
        operation = context.operation
        blob = operation.parameters["uploadBlob"]
        info = self._uploads.info(blob)
        if info is None or info.size == 0:
            raise Refused("Nothing was uploaded.")
        # Reading ahead overlaps the next storage request with unpacking and hashing this chunk.
        chunks = prefetched(self._uploads.read_chunks(blob), depth=READ_AHEAD_CHUNKS)
        try:
            first = next(chunks, b"")
            if first.startswith(DUMP_MAGIC):
                chunks.close()
                result = self._ingest_dump(context, blob, info.size)
            elif first.startswith(GZIP_MAGIC):
                result = self._ingest_archive(context, _prepend(first, chunks), info.size)
            else:
                raise Refused(
                    "The upload is neither a Full Snapshot archive (.tar.gz) nor a PostgreSQL custom-format dump."
                )
        finally:
            chunks.close()
        context.output.update(result)

    def _ingest_dump(self, context: StepContext, blob: str, size: int) -> dict[str, Any]:
        """A database-only upload: the dump is chunked like a backup's (only the chunks the namespace lacks
        are stored)."""
        stream = prefetched(self._uploads.read_chunks(blob), depth=READ_AHEAD_CHUNKS)
        try:
            dump_size, dump_sha256, layout = self._chunk_dump(context.operation, _counting(stream, context, size))
        finally:
            stream.close()
        context.report(bytes_done=size, bytes_total=size, detail="database dump stored")
        self._write_file_list(context.operation, iter(()))
        return {
            "kind": "database_only",
            "dumpSize": dump_size,
            "dumpSha256": dump_sha256,
            "dumpLayout": layout,
            "fileCount": 0,
            "filesSize": 0,
        }

    def _chunk_dump(self, operation: Operation, stream: Iterator[bytes]) -> tuple[int, str, dict[str, Any]]:
        stored = StoredChunks(self._latest_chunk_lists(operation.namespace))
        writer = ChunkedDumpWriter(
            self._backup_store,
            self._content,
            operation.namespace,
            self._folder(operation),
            staging=(self._uploads, pending_chunks(operation)),
            stored=stored,
        )
        try:
            writer.write_all(stream)
            layout = writer.commit()
        except BaseException:
            writer.abort()
            raise
        finally:
            stored.close()
        return writer.size, writer.sha256, layout

    def _latest_chunk_lists(self, namespace: str) -> Iterator[Iterator[ChunkRef]]:
        """The chunk lists of the namespace's environments' latest finished backups: an archive downloaded and
        uploaded again (into any environment of the namespace) stores no chunk twice."""
        for environment in self._environments.all():
            if environment.namespace != namespace:
                continue
            latest = self._backup_catalog.latest_finished(environment.id)
            if latest is not None:
                yield previous_chunks(self._backup_store, backup_folder(namespace, latest.environment_id, latest.id))

    def _ingest_archive(self, context: StepContext, stream: Iterator[bytes], upload_size: int) -> dict[str, Any]:
        operation = context.operation
        files = _FileList()
        metadata: dict[str, Any] = {}
        dump: tuple[int, str, dict[str, Any]] | None = None
        count = files_size = 0
        keeping = _Keeper(self._copy_concurrency)
        try:
            for entry in full_snapshot_entries(
                _counting(stream, context, upload_size), expanded_limit=self._expanded_limit
            ):
                if entry.kind == "metadata":
                    metadata = _read_metadata(entry)
                elif entry.kind == "dump":
                    dump = self._store_dump(operation, entry)
                else:
                    md5 = self._store_file(operation, entry, keeping)
                    files.add(str(entry.file_uuid), entry.size, md5, entry.path)
                    count += 1
                    files_size += entry.size
                    context.report(done=count, detail=f"{count} file documents checked")
                    if count == 1:
                        crash_point("upload.ingest.files")
            stored = keeping.finish()
            if dump is None:
                raise Refused("The archive has no db/db.backup.")
            self._write_file_list(operation, files.ordered())
        finally:
            keeping.close()
            files.close()
        return {
            "kind": "files_and_database",
            "metadata": {key: metadata[key] for key in _METADATA_FIELDS if key in metadata},
            "dumpSize": dump[0],
            "dumpSha256": dump[1],
            "dumpLayout": dump[2],
            "fileCount": count,
            "filesSize": files_size,
            "filesStored": stored,
        }

    def _store_dump(self, operation: Operation, entry: Entry) -> tuple[int, str, dict[str, Any]]:
        """db/db.backup, chunked like a backup's dump: an archive downloaded and uploaded again adds no chunk."""
        head = entry.stream.read(len(DUMP_MAGIC))
        if head != DUMP_MAGIC:
            raise Refused("db/db.backup is not a PostgreSQL custom-format archive (no PGDMP header).")

        def blocks() -> Iterator[bytes]:
            yield head
            while chunk := entry.stream.read(self._block_size):
                yield chunk

        return self._chunk_dump(operation, blocks())

    def _store_file(self, operation: Operation, entry: Entry, keeping: _Keeper) -> str:
        """Hash the file; keep it (under the operation's pending folder) only if the namespace's
        store lacks it — small files by a few background requests at a time. Returns its MD5."""
        file_uuid = str(entry.file_uuid)
        pending = pending_folder(operation) + file_uuid
        if entry.size <= SMALL_FILE:
            content = entry.stream.read(entry.size)
            md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
            keeping.submit(self._keep_if_new, content_object(operation.namespace, file_uuid, md5), pending, content)
            return md5
        digest = hashlib.md5(usedforsecurity=False)
        writer: BlockWriter = self._uploads.writer(pending, block_size=self._block_size, parallelism=2)
        try:
            while chunk := entry.stream.read(self._block_size):
                digest.update(chunk)
                writer.write(chunk)
            md5 = digest.hexdigest()
            if self._content.info(content_object(operation.namespace, file_uuid, md5)) is not None:
                writer.abort()
                return md5
            writer.commit()
            keeping.count_kept()
        except BaseException:
            writer.abort()
            raise
        return md5

    def _keep_if_new(self, final: str, pending: str, content: bytes) -> bool:
        if self._content.info(final) is not None:
            return False
        self._uploads.put(pending, content, overwrite=True)
        return True

    def _write_file_list(self, operation: Operation, entries: Iterator[tuple[str, int, str]]) -> None:
        writer = self._backup_store.writer(self._folder(operation) + FILES, block_size=4 * 1024 * 1024, parallelism=2)
        for file_uuid, size, md5 in entries:
            writer.write(FileEntry(file_uuid, size, md5, content_object(operation.namespace, file_uuid, md5)).to_line())
        writer.commit(metadata={"sha256": writer.sha256}, content_type="application/x-ndjson")

    # -- 2 -----------------------------------------------------------------------------------

    def verify_dump(self, context: StepContext) -> None:
        operation = context.operation
        reader = DumpReader(
            self._backup_store,
            self._content,
            operation.namespace,
            self._folder(operation),
            staged=(self._uploads, pending_chunks(operation)),
        )
        try:
            self._databases.dump_schemas(reader.chunks())
        except DatabaseError as error:
            raise Refused(
                f"db/db.backup is not a PostgreSQL custom-format archive pg_restore can read: {error}"
            ) from error

    # -- 3 -----------------------------------------------------------------------------------

    def store_files(self, context: StepContext) -> None:
        """Publish the kept files under their content names (never overwriting), then drop each pending
        copy. The pending folder's listing and the file list are both in uuid order: one merge, a few
        copies in flight, so memory does not grow with the number of files."""
        operation = context.operation
        prefix = pending_folder(operation)
        pending = SortedStream(self._uploads.list(prefix, page_size=5000), lambda blob: blob.name[len(prefix) :])
        total = operation.output("ingest", "filesStored")

        def publish(name: str, entry: FileEntry) -> bool:
            created = self._content.copy_from_url(
                entry.object, self._uploads.copy_source_url(name, self._content), metadata={"md5": entry.md5}
            )
            self._uploads.delete(name)
            return created

        copied = done = 0
        window: deque[Future[bool]] = deque()
        with ThreadPoolExecutor(self._copy_concurrency, thread_name_prefix="upload-publish") as pool:
            for entry in read_file_list(self._backup_store, self._backup(operation)):
                kept = pending.seek(entry.uuid)
                if kept is None:
                    continue  # the namespace's store had it already
                window.append(pool.submit(publish, kept.name, entry))
                while len(window) > 2 * self._copy_concurrency or (window and window[0].done()):
                    copied += window.popleft().result()
                    done += 1
                    if done % 100 == 0:
                        context.report(done=done, total=total, detail="storing file documents")
            while window:
                copied += window.popleft().result()
                done += 1
        context.report(done=done, total=total, detail="storing file documents")
        context.output.update(copied=copied, chunksStored=self._publish_chunks(operation))

    def _publish_chunks(self, operation: Operation) -> int:
        """The dump's new packs, from the pending folder into the namespace's store (never overwriting)."""
        prefix = pending_chunks(operation)

        def publish(name: str) -> bool:
            staged = name[len(prefix) :]
            final = (
                pack_object(operation.namespace, staged.removeprefix(STAGED_PACKS))
                if staged.startswith(STAGED_PACKS)
                else chunk_object(operation.namespace, staged)  # staged before packs
            )
            created = self._content.copy_from_url(final, self._uploads.copy_source_url(name, self._content))
            self._uploads.delete(name)
            return created

        published = 0
        window: deque[Future[bool]] = deque()
        with ThreadPoolExecutor(self._copy_concurrency, thread_name_prefix="upload-chunks") as pool:
            for blob in self._uploads.list(prefix, page_size=5000):
                window.append(pool.submit(publish, blob.name))
                while len(window) > 2 * self._copy_concurrency:
                    published += window.popleft().result()
            while window:
                published += window.popleft().result()
        return published

    # -- 4 -----------------------------------------------------------------------------------

    def finish(self, context: StepContext) -> None:
        operation = context.operation
        ingested = operation.step("ingest").output
        metadata = ingested.get("metadata", {})
        backup = self._backup(operation)
        now = self._clock()
        results = {
            "dump_size": ingested["dumpSize"],
            "dump_sha256": ingested["dumpSha256"],
            "dump_stored_size": ingested.get("dumpLayout", {}).get("storedSize"),
            "database_size": _integer(metadata.get("databaseSize")),
            "file_count": ingested["fileCount"],
            "files_size": ingested["filesSize"],
            "files_copied": operation.output("store_files", "copied", 0),
            "bytes_copied": None,
            "model_version": metadata.get("modelVersion") or None,
            "deployment_package": metadata.get("deploymentPackage") or None,
        }
        manifest = {
            **manifest_head(backup, now, results["model_version"], results["deployment_package"]),
            "uploaded": {"kind": ingested["kind"], "metadata": metadata},
            "database": {
                **ingested.get("dumpLayout", {"dump": DUMP}),
                "dumpSize": results["dump_size"],
                "dumpSha256": results["dump_sha256"],
            },
            "files": {"list": FILES, "count": results["file_count"], "size": results["files_size"]},
        }
        folder = self._folder(operation)
        self._backup_store.put(
            folder + MANIFEST, json.dumps(manifest, indent=2).encode(), content_type="application/json", overwrite=True
        )
        entry_id = context.remember("activityEntry", new_entry_id)
        context.point_of_no_return(f"The uploaded archive has become backup {backup.id}.")
        backup = self._backup_catalog.update(
            backup.environment_id,
            backup.id,
            lambda current: current.finished(now, **results) if current.status is BackupStatus.PROCESSING else current,
        )
        self._uploads.delete(operation.parameters["uploadBlob"])
        self._activity.record(
            operation.environment_id,
            Action.UPLOAD,
            Outcome.FINISHED,
            Principal(operation.created_by.id, operation.created_by.name),
            f"Uploaded archive added as backup {backup.id}: database dump {results['dump_size']} bytes, "
            f"{results['file_count']} file documents ({results['files_copied']} new).",
            backup_id=backup.id,
            operation_id=operation.id,
            entry_id=entry_id,
        )

    # -- refused or failed ----------------------------------------------------------------------

    def undo(self, context: StepContext) -> None:
        """Nothing stays behind: not the dump, not the file list, not a file object, not the upload."""
        operation = context.operation
        entry_id = context.remember("activityEntry", new_entry_id)
        self._backup_store.delete_prefix(self._folder(operation))
        self._uploads.delete_prefix(pending_folder(operation))
        self._uploads.delete(operation.parameters["uploadBlob"])
        if operation.ending is OperationStatus.CANCELLED:
            who = operation.cancel_requested_by or operation.created_by
            status, outcome, actor = BackupStatus.CANCELLED, Outcome.CANCELLED, Principal(who.id, who.name)
            message = f"Cancelled by {who.name or who.id}."
        else:
            status, outcome = BackupStatus.FAILED, Outcome.FAILED
            actor = Principal(operation.created_by.id, operation.created_by.name)
            message = operation.error
        if self._backup_catalog.find(operation.environment_id, str(operation.backup_id)) is not None:
            self._backup_catalog.update(
                operation.environment_id,
                str(operation.backup_id),
                lambda current: (
                    current.failed(self._clock(), message, status)
                    if current.status is BackupStatus.PROCESSING
                    else current
                ),
            )
        self._activity.record(
            operation.environment_id,
            Action.UPLOAD,
            outcome,
            actor,
            f"Upload cancelled: {message}"
            if status is BackupStatus.CANCELLED
            else f"Upload refused or failed: {message}",
            backup_id=operation.backup_id,
            operation_id=operation.id,
            entry_id=entry_id,
        )


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _counting(chunks: Iterator[bytes], context: StepContext, total: int) -> Iterator[bytes]:
    read = 0
    for chunk in chunks:
        read += len(chunk)
        context.report(bytes_done=read, bytes_total=total)
        yield chunk


def _read_metadata(entry: Entry) -> dict[str, Any]:
    if entry.size > MAX_METADATA:
        raise Refused(f".metadata is {entry.size} bytes; a Full Snapshot's is a small JSON object.")
    raw = entry.stream.read(entry.size)
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise Refused(".metadata is not JSON.") from error
    if not isinstance(document, dict):
        raise Refused(".metadata is not a JSON object.")
    return {key: str(value) for key, value in document.items() if isinstance(value, str | int | float)}


def _integer(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
