"""Where a backup writes its dump: as chunks (the layout of new backups), or as the one dump blob of
before (kept behind ``APPBACKUPS_CHUNKED_DUMPS=false``, so both can be measured side by side)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from shared.adapters.blobs import BlobStore
from shared.dumps.reader import DUMP
from shared.dumps.store import CHUNK_INDEX, CHUNK_LIST, ChunkLookup, ChunkRef, ChunkWriter, KnownChunks

FORMAT = "pg_dump --format=custom --no-owner --no-privileges"


class DumpWriter(Protocol):
    chunked: bool  # is the dump wanted uncompressed (each chunk is compressed instead)?

    @property
    def sha256(self) -> str: ...

    @property
    def size(self) -> int: ...

    def write_all(self, stream: Iterable[bytes]) -> None: ...

    def commit(self) -> dict[str, Any]:
        """Make the dump part of the backup's data; what the manifest says of it."""
        ...

    def abort(self) -> None: ...


class ChunkedDumpWriter:
    chunked = True

    def __init__(
        self,
        backup_store: BlobStore,
        content_store: BlobStore,
        namespace: str,
        folder: str,
        *,
        staging: tuple[BlobStore, str] | None = None,
        previous: Iterator[ChunkRef] | None = None,
        stored: ChunkLookup | None = None,
    ) -> None:
        """``previous``: the chunk list of the environment's last dump; or ``stored``, chunks stored already."""
        known = KnownChunks(previous) if previous is not None else stored
        self._writer = ChunkWriter(backup_store, content_store, namespace, folder, staging=staging, known=known)

    @property
    def sha256(self) -> str:
        return self._writer.sha256

    @property
    def size(self) -> int:
        return self._writer.size

    def write_all(self, stream: Iterable[bytes]) -> None:
        self._writer.write_all(stream)

    def commit(self) -> dict[str, Any]:
        stats = self._writer.commit()
        return {
            "layout": "chunks",
            "format": f"{FORMAT} --compress=0",
            "chunks": CHUNK_LIST,
            "chunkIndex": CHUNK_INDEX,
            "chunkCount": stats.chunks,
            "distinctChunks": stats.distinct,
            "newChunks": stats.new,
            "newChunkBytes": stats.new_bytes,
            "newPacks": stats.packs,
            "storedSize": stats.stored_size,
            "chunkListSha256": stats.list_sha256,
        }

    def abort(self) -> None:
        self._writer.abort()


class BlobDumpWriter:
    chunked = False

    def __init__(self, backup_store: BlobStore, folder: str, block_size: int) -> None:
        self._writer = backup_store.writer(folder + DUMP, block_size=block_size)
        self._block_size = block_size

    @property
    def sha256(self) -> str:
        return self._writer.sha256

    @property
    def size(self) -> int:
        return self._writer.size

    def write_all(self, stream: Iterable[bytes]) -> None:
        for block in stream:
            self._writer.write(block)

    def commit(self) -> dict[str, Any]:
        self._writer.commit(metadata={"sha256": self._writer.sha256}, content_type="application/octet-stream")
        return {"layout": "blob", "dump": DUMP, "format": FORMAT}

    def abort(self) -> None:
        self._writer.abort()


def dump_writer(
    backup_store: BlobStore,
    content_store: BlobStore,
    namespace: str,
    folder: str,
    *,
    chunked: bool,
    block_size: int,
    previous: Iterator[ChunkRef] | None = None,
) -> DumpWriter:
    """``previous``: the chunk list of the environment's last finished backup (chunks known to be stored)."""
    if chunked:
        return ChunkedDumpWriter(backup_store, content_store, namespace, folder, previous=previous)
    return BlobDumpWriter(backup_store, folder, block_size)


def after_first(stream: Iterable[bytes], then: Callable[[], None]) -> Iterator[bytes]:
    """``stream``, calling ``then`` once its first block has been taken."""
    first = True
    for block in stream:
        yield block
        if first:
            first = False
            then()
