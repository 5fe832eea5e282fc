"""The one way a stored dump is read: its chunks streamed in order, each verified, or — for a backup
made before dumps were chunked — its one dump blob. Restore, download, drills and upload checks read
through here, so a damaged dump fails each of them the same way, naming what is damaged."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import zstandard

from shared.adapters.blobs import BlobStore
from shared.adapters.errors import BlobNotFound
from shared.dumps.store import ChunkRef, chunk_object, is_chunked, read_chunk_list
from shared.faults import Fault

DUMP = "db.backup"  # the one dump blob of the backups made before chunks
READ_AHEAD = 16  # chunks fetched ahead of the consumer: memory is these chunks
READ_THREADS = 8


class DumpCorrupted(Fault):
    """A stored dump, or one of its chunks, is missing or does not match its checksum."""


class DumpReader:
    """Reads the dump of the backup whose folder is ``folder``; ``expected_sha256`` and ``expected_size``
    (the backup's) are checked at the end of every read."""

    def __init__(
        self,
        backup_store: BlobStore,
        content_store: BlobStore,
        namespace: str,
        folder: str,
        *,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
        staged: tuple[BlobStore, str] | None = None,
    ) -> None:
        self._staged = staged  # where chunks not yet published are kept (an upload's, before it is added)
        self._backup_catalog = backup_store
        self._content = content_store
        self._namespace = namespace
        self._folder = folder
        self._sha256 = expected_sha256
        self._size = expected_size
        self._chunked: bool | None = None

    @property
    def chunked(self) -> bool:
        if self._chunked is None:
            self._chunked = is_chunked(self._backup_catalog, self._folder)
        return self._chunked

    def chunks(self) -> Iterator[bytes]:
        """The dump from its start, verified as it goes: a bad chunk raises ``DumpCorrupted`` before any
        of its bytes is yielded; a whole dump that disagrees with the backup's SHA-256, after its last."""
        digest = hashlib.sha256() if self._sha256 is not None else None  # each chunk is checked anyway
        size = 0
        for piece in self._chunk_contents() if self.chunked else self._blob():
            if digest is not None:
                digest.update(piece)
            size += len(piece)
            yield piece
        if self._size is not None and size != self._size:
            raise DumpCorrupted(f"The database dump in {self._folder} is {size} bytes, not the {self._size} recorded.")
        if digest is not None and digest.hexdigest() != self._sha256:
            raise DumpCorrupted(f"The database dump in {self._folder} does not match its SHA-256.")

    def _blob(self) -> Iterator[bytes]:
        try:
            yield from self._backup_catalog.read_chunks(self._folder + DUMP)
        except BlobNotFound as error:
            raise DumpCorrupted(f"The database dump {self._folder + DUMP} is missing.") from error

    def _fetch(self, ref: ChunkRef) -> bytes:
        name = chunk_object(self._namespace, ref.sha256)
        try:
            stored = self._content.read_bytes(name)
        except BlobNotFound as error:
            if self._staged is None:
                raise DumpCorrupted(f"Chunk {name} of the database dump is missing.") from error
            try:
                stored = self._staged[0].read_bytes(self._staged[1] + ref.sha256)
            except BlobNotFound:
                raise DumpCorrupted(f"Chunk {name} of the database dump is missing.") from error
        try:
            content = zstandard.ZstdDecompressor().decompress(stored, max_output_size=ref.size)
        except zstandard.ZstdError as error:
            raise DumpCorrupted(f"Chunk {name} of the database dump is damaged: {error}.") from error
        if len(content) != ref.size or hashlib.sha256(content).hexdigest() != ref.sha256:
            raise DumpCorrupted(f"Chunk {name} of the database dump does not match its SHA-256.")
        return content

    def _chunk_contents(self) -> Iterator[bytes]:
        try:
            refs = read_chunk_list(self._backup_catalog, self._folder)
            with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="dump-read") as pool:
                pending: deque[Future[bytes]] = deque()
                ahead = 2  # doubled as reading goes on: a reader that stops early (at the TOC) fetched little
                try:
                    for ref in refs:
                        pending.append(pool.submit(self._fetch, ref))
                        if len(pending) >= ahead:
                            yield pending.popleft().result()
                            ahead = min(2 * ahead, READ_AHEAD)
                    while pending:
                        yield pending.popleft().result()
                finally:
                    for future in pending:
                        future.cancel()
        except BlobNotFound as error:
            raise DumpCorrupted(f"The chunk list of the database dump in {self._folder} is missing.") from error
