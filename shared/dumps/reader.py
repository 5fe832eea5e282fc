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
from shared.dumps.store import STAGED_PACKS, ChunkRef, is_chunked, read_chunk_list
from shared.faults import Fault

DUMP = "db.backup"  # the one dump blob of the backups made before chunks
READ_AHEAD = 6  # reads ahead of the consumer: memory is these reads' chunks, at most 24 MiB
READ_THREADS = 6
# One read takes the chunks that lie one after the other in a pack, up to these sizes.
READ_STORED_BYTES = 1024 * 1024
READ_CONTENT_BYTES = 4 * 1024 * 1024


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

    def _read(self, first: ChunkRef, length: int) -> tuple[str, bytes]:
        """The stored bytes of ``length`` from ``first`` on: a range of its pack, or a chunk object of its own."""
        name = first.object_name(self._namespace)

        def read(store: BlobStore, object_name: str) -> bytes:
            if first.pack:
                return store.read_range(object_name, first.offset, length)
            return store.read_bytes(object_name)

        missing = f"{_describe(first, name)} of the database dump is missing."
        try:
            return name, read(self._content, name)
        except BlobNotFound as error:
            if self._staged is None:
                raise DumpCorrupted(missing) from error
            staged = self._staged[1] + (STAGED_PACKS + first.pack if first.pack else first.sha256)
            try:
                return name, read(self._staged[0], staged)
            except BlobNotFound:
                raise DumpCorrupted(missing) from error

    def _fetch(self, refs: list[ChunkRef]) -> list[bytes | DumpCorrupted]:
        """The contents of chunks that lie one after the other, read in one request; a chunk that fails its
        checks ends the list with the error, so that the chunks before it are still given out."""
        name, stored = self._read(refs[0], sum(ref.stored for ref in refs))
        contents: list[bytes | DumpCorrupted] = []
        position = 0
        for ref in refs:
            piece = stored[position : position + ref.stored] if refs[0].pack else stored
            position += ref.stored
            try:
                content = zstandard.ZstdDecompressor().decompress(piece, max_output_size=ref.size)
            except zstandard.ZstdError as error:
                contents.append(DumpCorrupted(f"{_describe(ref, name)} of the database dump is damaged: {error}."))
                break
            if len(content) != ref.size or hashlib.sha256(content).hexdigest() != ref.sha256:
                contents.append(
                    DumpCorrupted(f"{_describe(ref, name)} of the database dump does not match its SHA-256.")
                )
                break
            contents.append(content)
        return contents

    def _chunk_contents(self) -> Iterator[bytes]:
        try:
            reads = _reads(read_chunk_list(self._backup_catalog, self._folder))
            with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="dump-read") as pool:
                pending: deque[Future[list[bytes | DumpCorrupted]]] = deque()
                ahead = 2  # doubled as reading goes on: a reader that stops early (at the TOC) fetched little
                try:
                    for refs in reads:
                        pending.append(pool.submit(self._fetch, refs))
                        if len(pending) >= ahead:
                            yield from _given_out(pending.popleft().result())
                            ahead = min(2 * ahead, READ_AHEAD)
                    while pending:
                        yield from _given_out(pending.popleft().result())
                finally:
                    for future in pending:
                        future.cancel()
        except BlobNotFound as error:
            raise DumpCorrupted(f"The chunk list of the database dump in {self._folder} is missing.") from error


def _describe(ref: ChunkRef, name: str) -> str:
    return f"Chunk {ref.sha256} (in {name} at byte {ref.offset})" if ref.pack else f"Chunk {name}"


def _given_out(contents: list[bytes | DumpCorrupted]) -> Iterator[bytes]:
    for content in contents:
        if isinstance(content, DumpCorrupted):
            raise content
        yield content


def _reads(refs: Iterator[ChunkRef]) -> Iterator[list[ChunkRef]]:
    """The chunk list cut into reads: the chunks that lie one after the other in the same pack go together, up
    to the read sizes; a chunk of its own (the layout before packs) is a read of its own."""
    group: list[ChunkRef] = []
    stored = content = 0
    for ref in refs:
        if group:
            last = group[-1]
            follows = ref.pack and ref.pack == last.pack and ref.offset == last.offset + last.stored
            if not follows or stored + ref.stored > READ_STORED_BYTES or content + ref.size > READ_CONTENT_BYTES:
                yield group
                group, stored, content = [], 0, 0
        group.append(ref)
        stored += ref.stored
        content += ref.size
    if group:
        yield group
