"""Writing a dump as chunks: each compressed, content-addressed and written once; the chunk list and
the chunk index committed with the backup's other data.

content/{namespace}/chunks/{sha256}   one chunk, zstd-compressed; named by the SHA-256 of its content
{backup folder}/db.chunks           "<sha256> <size> <stored size>" per chunk, in dump order (what the reader
                                      follows)
{backup folder}/db.chunkindex       each chunk's object name once, in name order (what pruning merges)

A chunk is never rewritten: one that exists already is reused (WORM containers work), and its name says
what its content must be, which the reader checks."""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import zstandard

from shared.adapters.blobs import BlobStore
from shared.adapters.errors import BlobExists, BlobNotFound
from shared.dumps.chunker import chunks_of

CHUNK_LIST = "db.chunks"
CHUNK_INDEX = "db.chunkindex"
CODEC = "zstd"
LEVEL = 3
_IN_FLIGHT = 16  # chunks being compressed or stored at once: memory is this many chunks


def chunk_object(namespace: str, sha256: str) -> str:
    return f"{namespace}/chunks/{sha256}"


@dataclass(frozen=True)
class ChunkRef:
    sha256: str
    size: int  # of the chunk's content, uncompressed
    stored: int = 0  # what its object takes, compressed

    def to_line(self) -> bytes:
        return f"{self.sha256} {self.size} {self.stored}\n".encode()

    @classmethod
    def from_line(cls, line: bytes) -> ChunkRef:
        sha256, size, *stored = line.split()
        return cls(sha256.decode(), int(size), int(stored[0]) if stored else 0)


@dataclass(frozen=True)
class ChunkStats:
    size: int  # of the dump
    sha256: str  # of the dump
    chunks: int  # in the dump
    distinct: int  # chunks the dump refers to, each once
    new: int  # chunks this write stored
    new_bytes: int  # what they take in storage
    stored_size: int  # what every chunk of the dump takes in storage, compressed (a repeated one each time)
    list_sha256: str  # of the chunk list


class _Index:
    """The distinct chunk names of a dump, in a temporary SQLite database: memory stays flat."""

    def __init__(self) -> None:
        self._file = tempfile.NamedTemporaryFile(prefix="appbackups-chunks-", suffix=".sqlite")  # noqa: SIM115
        self._db = sqlite3.connect(self._file.name, check_same_thread=False)
        self._db.execute("CREATE TABLE chunks (name TEXT PRIMARY KEY) WITHOUT ROWID")

    def add(self, name: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO chunks VALUES (?)", (name,))

    def ordered(self) -> Iterator[str]:
        for (name,) in self._db.execute("SELECT name FROM chunks ORDER BY name"):
            yield name

    def close(self) -> None:
        self._db.close()
        self._file.close()


class KnownChunks:
    """The chunks of the environment's previous dump, which the store is known to hold (a finished backup
    refers to them; a sweep meanwhile is caught by the backup's check against sweeps): a new chunk found
    among them needs no request to the store. The previous chunk list is streamed, and only a window of it
    is held, around where the new dump has got to: dumps of the same database change little, so their
    chunks come in nearly the same order. A chunk outside the window is simply asked for."""

    def __init__(self, previous: Iterator[ChunkRef], window: int = 4096) -> None:
        self._previous = previous
        self._window = window
        self._ahead: deque[str] = deque()
        self._stored: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def _pull(self) -> None:
        while len(self._ahead) < self._window:
            ref = next(self._previous, None)
            if ref is None:
                return
            self._ahead.append(ref.sha256)
            self._counts[ref.sha256] = self._counts.get(ref.sha256, 0) + 1
            self._stored[ref.sha256] = ref.stored

    def _drop_first(self) -> None:
        sha256 = self._ahead.popleft()
        self._counts[sha256] -= 1
        if not self._counts[sha256]:
            del self._counts[sha256]
            del self._stored[sha256]

    def find(self, sha256: str) -> int | None:
        """The chunk's stored size if the previous dump has it near here, else None."""
        with self._lock:
            self._pull()
            if sha256 not in self._counts:
                if len(self._ahead) >= self._window:  # keep the window moving with the new dump
                    for _ in range(self._window // 8):
                        self._drop_first()
                return None
            stored = self._stored[sha256]
            while self._ahead[0] != sha256:  # the dump has got past what precedes the match
                self._drop_first()
            self._drop_first()
            return stored


class ChunkWriter:
    """Cuts a dump into chunks and stores the new ones; ``commit`` writes the chunk list and index into
    the backup's folder. ``write_all`` takes the dump's stream; ``abort`` drops the lists (chunks already
    stored stay: complete, shared objects that pruning reclaims when nothing refers to them)."""

    def __init__(
        self,
        backup_store: BlobStore,
        content_store: BlobStore,
        namespace: str,
        folder: str,
        *,
        parallelism: int = 4,
        staging: tuple[BlobStore, str] | None = None,
        known: KnownChunks | None = None,
    ) -> None:
        self._content = content_store
        self._known = known
        self._staging = staging  # where new chunks are kept until they are published, if not in the store
        self._namespace = namespace
        self._list = backup_store.writer(folder + CHUNK_LIST, block_size=4 * 1024 * 1024, parallelism=2)
        self._index_writer = backup_store.writer(folder + CHUNK_INDEX, block_size=4 * 1024 * 1024, parallelism=2)
        self._index = _Index()
        self._pool = ThreadPoolExecutor(parallelism, thread_name_prefix="dump-chunks")
        self._local = threading.local()
        self._digest = hashlib.sha256()
        self._lock = threading.Lock()
        self.size = self.chunks = self.new = self.new_bytes = self.stored_size = 0

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def _compressor(self) -> zstandard.ZstdCompressor:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True)
        return compressor

    def _store(self, chunk: bytes) -> ChunkRef:
        """Hash the chunk; compress and store it unless the namespace has it already. Returns it, with the
        bytes it takes in storage."""
        sha256 = hashlib.sha256(chunk).hexdigest()
        known = self._known.find(sha256) if self._known is not None else None
        if known:
            return ChunkRef(sha256, len(chunk), known)
        name = chunk_object(self._namespace, sha256)
        if self._staging is not None:  # staged chunks are published later: stage only what the store lacks
            existing = self._content.info(name)
            if existing is not None:
                return ChunkRef(sha256, len(chunk), existing.size)
        # Otherwise one request: a write that refuses to overwrite (an existing chunk is the same content).
        stored = self._compressor().compress(chunk)
        metadata = {"sha256": sha256, "size": str(len(chunk)), "codec": CODEC}
        store, name = (self._staging[0], self._staging[1] + sha256) if self._staging else (self._content, name)
        try:
            store.put(name, stored, metadata=metadata, content_type="application/zstd")
        except BlobExists:
            return ChunkRef(sha256, len(chunk), len(stored))  # stored meanwhile by another: the same content
        with self._lock:
            self.new += 1
            self.new_bytes += len(stored)
        return ChunkRef(sha256, len(chunk), len(stored))

    def write_all(self, stream: Iterable[bytes], on_chunk: object = None) -> None:
        """Chunk and store the whole stream, a bounded number of chunks in flight."""
        pending: deque[Future[ChunkRef]] = deque()

        def settle() -> None:
            ref = pending.popleft().result()
            self.stored_size += ref.stored
            self._list.write(ref.to_line())
            self._index.add(chunk_object(self._namespace, ref.sha256))
            self.chunks += 1
            if callable(on_chunk):
                on_chunk(self.chunks)

        try:
            for chunk in chunks_of(stream):
                self._digest.update(chunk)
                self.size += len(chunk)
                pending.append(self._pool.submit(self._store, chunk))
                while len(pending) > _IN_FLIGHT or (pending and pending[0].done()):
                    settle()
            while pending:
                settle()
        except BaseException:
            for future in pending:
                future.cancel()
            raise

    def commit(self) -> ChunkStats:
        """Write the chunk list and the index (overwriting an earlier attempt's: they are not finished
        data until the manifest names them)."""
        distinct = 0
        for name in self._index.ordered():
            self._index_writer.write(name.encode() + b"\n")
            distinct += 1
        self._list.commit(
            metadata={"sha256": self._list.sha256, "count": str(self.chunks), "dumpSha256": self.sha256},
            content_type="text/plain",
        )
        self._index_writer.commit(metadata={"count": str(distinct)}, content_type="text/plain")
        stats = ChunkStats(
            self.size,
            self.sha256,
            self.chunks,
            distinct,
            self.new,
            self.new_bytes,
            self.stored_size,
            self._list.sha256,
        )
        self.close()
        return stats

    def abort(self) -> None:
        self._list.abort()
        self._index_writer.abort()
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._index.close()


def read_chunk_list(store: BlobStore, folder: str) -> Iterator[ChunkRef]:
    for line in store.read_lines(folder + CHUNK_LIST):
        if line.strip():
            yield ChunkRef.from_line(line)


def read_chunk_index(store: BlobStore, folder: str) -> Iterator[str]:
    """A backup's chunk object names, each once, in name order; none for a backup without chunks."""
    try:
        for line in store.read_lines(folder + CHUNK_INDEX):
            if line.strip():
                yield line.decode()
    except BlobNotFound:
        return


def previous_chunks(store: BlobStore, folder: str) -> Iterator[ChunkRef]:
    """A backup's chunk list, or none when it has none (one dump blob, or data removed meanwhile)."""
    try:
        yield from read_chunk_list(store, folder)
    except BlobNotFound:
        return


def is_chunked(store: BlobStore, folder: str) -> bool:
    return store.info(folder + CHUNK_LIST) is not None
