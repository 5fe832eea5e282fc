"""File documents into the content store, in uuid order, with server-side copies of only what the store does
not have yet, a bounded number at a time. A full reconciliation merges the database's uuids, the source
container's listing and the previous backup's file list; an incremental collection merges the database's
uuids with the previous file list alone and reads only the new uuids from the container, by name."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from shared.adapters.blobs import BlobInfo, BlobStore
from shared.adapters.errors import SourceChanged
from shared.backups.layout import FileEntry, content_object
from shared.domain.backups import MISSING_UUIDS_KEPT
from shared.faults import Fault
from shared.merges import SortedStream

LIST_PAGE = 5000
HELD_IN_ORDER = 10_000  # file entries (a few hundred bytes each) waiting in order behind copies still at work
_T = TypeVar("_T")


class MissingFileDocument(Fault):
    """The database refers to a file document whose blob is not in the file store."""


@dataclass
class FileStats:
    count: int = 0
    size: int = 0
    copied: int = 0
    copied_bytes: int = 0
    hashed: int = 0
    missing: int = 0  # file-document rows whose blob is not in the file store (missingFiles: warn)
    missing_uuids: list[str] = field(default_factory=list)  # the first MISSING_UUIDS_KEPT of them
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_copy(self, size: int) -> None:
        with self._lock:
            self.copied += 1
            self.copied_bytes += size

    def add_hash(self) -> None:
        with self._lock:
            self.hashed += 1

    def add_missing(self, file_uuid: str) -> None:
        with self._lock:
            self.missing += 1
            if len(self.missing_uuids) < MISSING_UUIDS_KEPT:
                self.missing_uuids.append(file_uuid)


def match_sources(
    uuids: Iterator[str],
    listing: Iterator[BlobInfo],
    prefix: str,
    previous: Iterator[FileEntry],
    on_missing: Callable[[str], None] | None = None,
) -> Iterator[tuple[str, BlobInfo, FileEntry | None]]:
    """Join three sorted streams on the uuid. A uuid the store lacks goes to ``on_missing`` and is left
    out; without it, that raises MissingFileDocument."""
    blobs = SortedStream(listing, lambda blob: blob.name[len(prefix) :])
    earlier = SortedStream(previous, lambda entry: entry.uuid)
    for file_uuid in uuids:
        blob = blobs.seek(file_uuid)
        if blob is None:
            if on_missing is None:
                raise MissingFileDocument(
                    f"File document {file_uuid} is referenced by the database but its blob {prefix}{file_uuid} is "
                    "missing (the environment's missingFiles setting is fail)."
                )
            on_missing(file_uuid)
            continue
        yield file_uuid, blob, earlier.seek(file_uuid)


class FileCollector:
    def __init__(
        self,
        source: BlobStore,
        content: BlobStore,
        namespace: str,
        *,
        concurrency: int,
        on_progress: Callable[[FileStats], None] | None = None,
        strict: bool = False,
    ) -> None:
        self._strict = strict  # a missing blob fails the backup (missingFiles: fail) rather than being counted
        self._source = source
        self._content = content
        self._namespace = namespace
        self._concurrency = concurrency
        self._on_progress = on_progress
        self.stats = FileStats()

    def _md5_of(self, blob: BlobInfo) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        for chunk in self._source.read_chunks(blob.name, etag=blob.etag):
            digest.update(chunk)
        self.stats.add_hash()
        return digest.hexdigest()

    def _store(self, file_uuid: str, blob: BlobInfo, md5: str | None) -> FileEntry:
        # A copy keeps the source's Content-MD5; where the source had none, we hashed it and the
        # object carries that MD5 as metadata instead. The ETag condition binds the copy to the
        # very version that was listed (and hashed).
        hashed = md5 is None and blob.md5 is None
        md5 = md5 or self._md5_of(blob)
        name = content_object(self._namespace, file_uuid, md5)
        created = self._content.copy_from_url(
            name,
            self._source.copy_source_url(blob.name, self._content),
            source_etag=blob.etag,
            metadata={"md5": md5} if hashed or blob.md5 is None else None,
        )
        if created:
            self.stats.add_copy(blob.size)
        return FileEntry(file_uuid, blob.size, md5, name, blob.etag)

    def collect(self, uuids: Iterator[str], prefix: str, previous: Iterator[FileEntry]) -> Iterator[FileEntry]:
        """The backup's file entries in uuid order; each one's content is in the store when yielded."""

        def work(pool: ThreadPoolExecutor) -> Iterator[Future[FileEntry]]:
            on_missing = None if self._strict else self.stats.add_missing
            # Pages of 5,000 (the service's most): each page is one billed List Blobs transaction.
            listing = self._source.list(prefix, page_size=LIST_PAGE)
            matched = match_sources(uuids, listing, prefix, previous, on_missing)
            for file_uuid, blob, before in matched:
                known_md5 = blob.md5 or (before.md5 if before and before.source_etag == blob.etag else None)
                reusable = (
                    known_md5 and before and before.object == content_object(self._namespace, file_uuid, known_md5)
                )
                if reusable:
                    done: Future[FileEntry] = Future()
                    done.set_result(FileEntry(file_uuid, blob.size, known_md5, before.object, blob.etag))  # type: ignore[arg-type, union-attr]
                    yield done
                else:
                    yield pool.submit(self._store, file_uuid, blob, known_md5)

        return (self._counted(entry) for entry in self._in_order(work))

    def collect_incremental(
        self, uuids: Iterator[str], prefix: str, previous: Iterator[FileEntry]
    ) -> Iterator[FileEntry]:
        """The backup's file entries in uuid order, each one's content in the store when yielded, taking the
        previous backup's file list as the index: a uuid it holds keeps its entry as is (the source is not
        asked), a new one is read by name and copied as ``copy`` does. Work and requests grow with the new
        file documents, not with all of them; content changed under a uuid the list holds is not seen
        (``collect``, the full reconciliation, sees it)."""

        def work(pool: ThreadPoolExecutor) -> Iterator[Future[tuple[str, FileEntry | None]]]:
            earlier = SortedStream(previous, lambda entry: entry.uuid)
            for file_uuid in uuids:
                before = earlier.seek(file_uuid)
                if before is None:
                    yield pool.submit(self._fetch, prefix, file_uuid)
                else:
                    known: Future[tuple[str, FileEntry | None]] = Future()
                    known.set_result((file_uuid, before))
                    yield known

        return self._present(work, prefix)

    def copy(self, uuids: Iterator[str], prefix: str) -> Iterator[FileEntry]:
        """The entries of just these file documents, in their order, each one's content in the store when
        yielded. Each blob is read by its name (``prefix`` + uuid) rather than found in a listing of the
        container: a few file documents cost a few requests, whatever the container holds. A blob that is
        not there, or changed while being copied, is missing (as in ``collect``)."""

        def work(pool: ThreadPoolExecutor) -> Iterator[Future[tuple[str, FileEntry | None]]]:
            return (pool.submit(self._fetch, prefix, file_uuid) for file_uuid in uuids)

        return self._present(work, prefix)

    def _fetch(self, prefix: str, file_uuid: str) -> tuple[str, FileEntry | None]:
        blob = self._source.info(prefix + file_uuid)
        if blob is None:
            return file_uuid, None
        try:
            return file_uuid, self._store(file_uuid, blob, blob.md5)
        except SourceChanged:
            return file_uuid, None  # deleted or replaced since it was read: missing now, as a later read says

    def _present(
        self, work: Callable[[ThreadPoolExecutor], Iterator[Future[tuple[str, FileEntry | None]]]], prefix: str
    ) -> Iterator[FileEntry]:
        """The entries ``work`` found, in its order; a uuid without one is missing (counted, or with
        missingFiles: fail, the end of the backup)."""
        with contextlib.closing(self._in_order(work)) as results:
            for file_uuid, entry in results:
                if entry is not None:
                    yield self._counted(entry)
                elif self._strict:
                    raise MissingFileDocument(
                        f"File document {file_uuid} is referenced by the database but its blob {prefix}{file_uuid} "
                        "is missing (the environment's missingFiles setting is fail)."
                    )
                else:
                    self.stats.add_missing(file_uuid)

    def _in_order(self, work: Callable[[ThreadPoolExecutor], Iterator[Future[_T]]]) -> Iterator[_T]:
        """The results of ``work``'s futures, in its order: at most twice the concurrency of them at work, and
        up to ``HELD_IN_ORDER`` results that were ready at once (entries the previous list gives) held behind
        them — so that one new file document among a hundred known ones does not wait for the one before it.
        A failure, or the reader closing the stream, cancels the ones not started."""
        pending: deque[tuple[Future[_T], bool]] = deque()  # each future, and whether it was at work when queued
        working = 0
        with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="copy") as pool:
            try:
                for future in work(pool):
                    at_work = not future.done()
                    pending.append((future, at_work))
                    working += at_work
                    while pending and (
                        working > 2 * self._concurrency or len(pending) > HELD_IN_ORDER or pending[0][0].done()
                    ):
                        head, counted = pending.popleft()
                        working -= counted
                        yield head.result()
                while pending:
                    yield pending.popleft()[0].result()
            except BaseException:
                for future, _ in pending:
                    future.cancel()
                raise

    def _counted(self, entry: FileEntry) -> FileEntry:
        self.stats.count += 1
        self.stats.size += entry.size
        if self._on_progress is not None:
            self._on_progress(self.stats)
        return entry
