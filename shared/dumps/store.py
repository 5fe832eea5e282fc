"""Writing a dump as chunks: each compressed and content-addressed, the new ones packed in the order of the dump
into write-once pack objects of a few MiB (one request each, rather than one per chunk); the chunk list and the
chunk index committed with the backup's other data.

content/{namespace}/packs/{id}       new chunks, each zstd-compressed, one after the other
content/{namespace}/chunks/{sha256}  one chunk, zstd-compressed (what backups made before packs wrote)
{backup folder}/db.chunks           "<sha256> <size> <stored size> [<pack id> <offset>]" per chunk, in dump order
                                      (what the reader follows)
{backup folder}/db.chunkindex       each object the dump needs once, in name order (what pruning merges)

No object is ever rewritten (WORM containers work). A chunk's name says what its content must be, which the
reader checks; a chunk the environment's previous dump has is not written again (docs/decisions/0020)."""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import zstandard

from shared.adapters.blobs import BlobStore
from shared.adapters.errors import BlobNotFound
from shared.dumps.chunker import chunks_of

CHUNK_LIST = "db.chunks"
CHUNK_INDEX = "db.chunkindex"
CODEC = "zstd"
LEVEL = 3
_IN_FLIGHT = 16  # chunks being compressed at once: memory is this many chunks
PACK_SIZE = 4 * 1024 * 1024  # a pack is written once it holds this much, compressed
_PACKS_IN_FLIGHT = 2  # packs being written at once (memory is these and the one being filled)


def chunk_object(namespace: str, sha256: str) -> str:
    return f"{namespace}/chunks/{sha256}"


def pack_object(namespace: str, pack: str) -> str:
    return f"{namespace}/packs/{pack}"


STAGED_PACKS = "packs/"  # under an upload's staging folder, its packs until they are published


@dataclass(frozen=True)
class ChunkRef:
    sha256: str
    size: int  # of the chunk's content, uncompressed
    stored: int = 0  # what it takes in storage, compressed
    pack: str = ""  # the pack holding it; none for a chunk stored as an object of its own
    offset: int = 0  # where it starts in its pack

    def object_name(self, namespace: str) -> str:
        return pack_object(namespace, self.pack) if self.pack else chunk_object(namespace, self.sha256)

    def to_line(self) -> bytes:
        packed = f" {self.pack} {self.offset}" if self.pack else ""
        return f"{self.sha256} {self.size} {self.stored}{packed}\n".encode()

    @classmethod
    def from_line(cls, line: bytes) -> ChunkRef:
        sha256, size, *rest = line.split()
        stored = int(rest[0]) if rest else 0
        if len(rest) >= 3:
            return cls(sha256.decode(), int(size), stored, rest[1].decode(), int(rest[2]))
        return cls(sha256.decode(), int(size), stored)


@dataclass(frozen=True)
class ChunkStats:
    size: int  # of the dump
    sha256: str  # of the dump
    chunks: int  # in the dump
    distinct: int  # chunks the dump refers to, each once
    new: int  # chunks this write stored
    new_bytes: int  # what they take in storage
    packs: int  # the pack objects they were written in (one storage request each)
    stored_size: int  # what every chunk of the dump takes in storage, compressed (a repeated one each time)
    list_sha256: str  # of the chunk list


class _Index:
    """The distinct object names of a dump, in a temporary SQLite database: memory stays flat."""

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
    among them is not stored again. The previous chunk list is streamed, and only a window of it is held,
    around where the new dump has got to: dumps of the same database change little, so their chunks come in
    nearly the same order. The chunks just behind the latest match stay in the window a while (``behind``):
    the writer's threads look chunks up a little out of order. A chunk outside the window is stored again."""

    def __init__(self, previous: Iterator[ChunkRef], window: int = 4096, behind: int = 2 * _IN_FLIGHT) -> None:
        self._previous = previous
        self._window = window
        self._behind = behind
        self._ahead: deque[str] = deque()
        self._first = 0  # the position in the previous list of the window's first chunk
        self._refs: dict[str, ChunkRef] = {}
        self._positions: dict[str, int] = {}  # of each chunk's last occurrence pulled into the window
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def _pull(self) -> None:
        while len(self._ahead) < self._window:
            ref = next(self._previous, None)
            if ref is None:
                return
            self._positions[ref.sha256] = self._first + len(self._ahead)
            self._ahead.append(ref.sha256)
            self._counts[ref.sha256] = self._counts.get(ref.sha256, 0) + 1
            self._refs[ref.sha256] = ref

    def _drop_first(self) -> None:
        sha256 = self._ahead.popleft()
        self._first += 1
        self._counts[sha256] -= 1
        if not self._counts[sha256]:
            del self._counts[sha256]
            del self._refs[sha256]
            del self._positions[sha256]

    def find(self, sha256: str) -> ChunkRef | None:
        """Where the previous dump has the chunk stored, if it has it near here."""
        with self._lock:
            self._pull()
            if sha256 not in self._counts:
                if len(self._ahead) >= self._window:  # keep the window moving with the new dump
                    for _ in range(self._window // 8):
                        self._drop_first()
                return None
            ref = self._refs[sha256]
            while self._ahead and self._first < self._positions[sha256] - self._behind:
                self._drop_first()  # the dump has got past what precedes the match
            return ref


class ChunkLookup(Protocol):
    def find(self, sha256: str) -> ChunkRef | None:
        """Where the chunk is stored already, if this lookup knows."""
        ...


class StoredChunks:
    """Every chunk that the given chunk lists name (and those added), and where it is stored, in a temporary SQLite
    database (memory stays flat): an upload's dump reuses what the namespace's latest backups stored, at one read
    per list; a writer, the chunks it packed already."""

    def __init__(self, chunk_lists: Iterable[Iterator[ChunkRef]] = ()) -> None:
        self._file = tempfile.NamedTemporaryFile(prefix="appbackups-stored-", suffix=".sqlite")  # noqa: SIM115
        self._db = sqlite3.connect(self._file.name, check_same_thread=False)
        self._db.execute("CREATE TABLE chunks (sha256 TEXT PRIMARY KEY, size, stored, pack, offset) WITHOUT ROWID")
        self._lock = threading.Lock()
        for refs in chunk_lists:
            self._db.executemany(
                "INSERT OR IGNORE INTO chunks VALUES (?, ?, ?, ?, ?)",
                ((ref.sha256, ref.size, ref.stored, ref.pack, ref.offset) for ref in refs),
            )

    def add(self, ref: ChunkRef) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO chunks VALUES (?, ?, ?, ?, ?)",
                (ref.sha256, ref.size, ref.stored, ref.pack, ref.offset),
            )

    def find(self, sha256: str) -> ChunkRef | None:
        with self._lock:
            row = self._db.execute(
                "SELECT size, stored, pack, offset FROM chunks WHERE sha256 = ?", (sha256,)
            ).fetchone()
        return ChunkRef(sha256, *row) if row else None

    def close(self) -> None:
        self._db.close()
        self._file.close()


class ChunkWriter:
    """Cuts a dump into chunks and packs the new ones; ``commit`` writes the last pack, then the chunk list and
    index into the backup's folder. ``write_all`` takes the dump's stream; ``abort`` drops the lists (packs already
    written stay: complete objects, which pruning reclaims when nothing refers to them)."""

    def __init__(
        self,
        backup_store: BlobStore,
        content_store: BlobStore,
        namespace: str,
        folder: str,
        *,
        parallelism: int = 4,
        staging: tuple[BlobStore, str] | None = None,
        known: ChunkLookup | None = None,
        pack_size: int = PACK_SIZE,
    ) -> None:
        self._content = content_store
        self._known = known
        self._staging = staging  # where new packs are kept until they are published, if not in the store
        self._namespace = namespace
        self._pack_size = pack_size
        self._list = backup_store.writer(folder + CHUNK_LIST, block_size=4 * 1024 * 1024, parallelism=2)
        self._index_writer = backup_store.writer(folder + CHUNK_INDEX, block_size=4 * 1024 * 1024, parallelism=2)
        self._index = _Index()
        self._packed = StoredChunks()  # a dump repeats some of its chunks: each is packed once
        self._pool = ThreadPoolExecutor(parallelism, thread_name_prefix="dump-chunks")
        self._pack_writes = ThreadPoolExecutor(_PACKS_IN_FLIGHT, thread_name_prefix="dump-packs")
        self._writing: deque[Future[None]] = deque()
        self._pack_id = uuid.uuid4().hex
        self._pack = bytearray()
        self._pack_chunks = 0
        self._local = threading.local()
        self._digest = hashlib.sha256()
        self.size = self.chunks = self.new = self.new_bytes = self.stored_size = self.packs = 0

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def _compressor(self) -> zstandard.ZstdCompressor:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True)
        return compressor

    def _prepare(self, chunk: bytes) -> ChunkRef | tuple[str, int, bytes]:
        """Hash the chunk: where the previous dump stored it, or else its compressed content to pack."""
        sha256 = hashlib.sha256(chunk).hexdigest()
        known = self._known.find(sha256) if self._known is not None else None
        if known is not None:
            return known
        return sha256, len(chunk), self._compressor().compress(chunk)

    def _place(self, prepared: ChunkRef | tuple[str, int, bytes]) -> ChunkRef:
        """In dump order: a new chunk is added to the pack being filled (once per dump)."""
        if isinstance(prepared, ChunkRef):
            return prepared
        sha256, size, stored = prepared
        again = self._packed.find(sha256)
        if again is not None:
            return again
        ref = ChunkRef(sha256, size, len(stored), self._pack_id, len(self._pack))
        self._pack += stored
        self._pack_chunks += 1
        self._packed.add(ref)
        self.new += 1
        self.new_bytes += len(stored)
        if len(self._pack) >= self._pack_size:
            self._write_pack()
        return ref

    def _write_pack(self) -> None:
        if not self._pack:
            return
        store, name = (
            (self._staging[0], self._staging[1] + STAGED_PACKS + self._pack_id)
            if self._staging
            else (self._content, pack_object(self._namespace, self._pack_id))
        )
        data, metadata = bytes(self._pack), {"chunks": str(self._pack_chunks), "codec": CODEC}
        while len(self._writing) >= _PACKS_IN_FLIGHT:
            self._writing.popleft().result()
        self._writing.append(
            self._pack_writes.submit(store.put, name, data, metadata=metadata, content_type="application/octet-stream")
        )
        self.packs += 1
        self._pack_id, self._pack, self._pack_chunks = uuid.uuid4().hex, bytearray(), 0

    def write_all(self, stream: Iterable[bytes], on_chunk: object = None) -> None:
        """Chunk the whole stream and pack its new chunks, a bounded number of chunks in flight."""
        pending: deque[Future[ChunkRef | tuple[str, int, bytes]]] = deque()

        def settle() -> None:
            ref = self._place(pending.popleft().result())
            self.stored_size += ref.stored
            self._list.write(ref.to_line())
            self._index.add(ref.object_name(self._namespace))
            self.chunks += 1
            if callable(on_chunk):
                on_chunk(self.chunks)

        try:
            for chunk in chunks_of(stream):
                self._digest.update(chunk)
                self.size += len(chunk)
                pending.append(self._pool.submit(self._prepare, chunk))
                while len(pending) > _IN_FLIGHT or (pending and pending[0].done()):
                    settle()
            while pending:
                settle()
        except BaseException:
            for future in pending:
                future.cancel()
            raise

    def commit(self) -> ChunkStats:
        """Write the last pack and wait for every pack, then the chunk list and the index (overwriting an earlier
        attempt's: they are not finished data until the manifest names them)."""
        self._write_pack()
        while self._writing:
            self._writing.popleft().result()
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
            self.packs,
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
        self._pack_writes.shutdown(wait=True, cancel_futures=True)
        self._index.close()
        self._packed.close()


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
