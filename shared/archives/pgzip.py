"""Parallel gzip, as pigz does it: blocks deflated on threads (zlib releases the GIL), joined in order into
one ordinary gzip member that any gzip reader reads."""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

_WINDOW = 32 * 1024
_SAMPLE = 16 * 1024  # from the start, the middle and the end of a block
_STORE_ABOVE = 0.97  # compressed / original size of the sample at which the block is stored


class Sink(Protocol):
    def write(self, data: bytes) -> object: ...


def incompressible(block: bytes) -> bool:
    """Already compressed (a custom-format dump, images, PDFs, office files: most of an archive), judged by a
    sample: such a block is stored, since deflate would spend its CPU for nothing."""
    if len(block) < 4 * _SAMPLE:
        return False
    middle = len(block) // 2
    sample = block[:_SAMPLE] + block[middle : middle + _SAMPLE] + block[-_SAMPLE:]
    return len(zlib.compress(sample, 1)) > _STORE_ABOVE * len(sample)


def _deflate(block: bytes, dictionary: bytes, level: int, last: bool) -> bytes:
    # Primed with the 32 KiB before it (matches across the edge are kept), ended by a sync flush (at a byte
    # boundary, not the stream's end): the pieces concatenate into one deflate stream.
    if level > 0 and incompressible(block):
        level = 0
    compressor = (
        zlib.compressobj(level, zlib.DEFLATED, -15, zdict=dictionary)
        if dictionary
        else zlib.compressobj(level, zlib.DEFLATED, -15)
    )
    return compressor.compress(block) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ParallelGzip:
    """A writable gzip stream into ``sink``; memory stays near ``2 * threads * block_size``."""

    def __init__(
        self,
        sink: Sink,
        *,
        level: int = 6,
        block_size: int = 1024 * 1024,
        threads: int | None = None,
        mtime: int | None = None,
    ) -> None:
        self._sink = sink
        self._level = level
        self._block_size = block_size
        self._threads = threads or max(1, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="gzip")
        self._pending: deque[Future[bytes]] = deque()
        self._buffer = bytearray()
        self._dictionary = b""
        self._crc = 0
        self._size = 0
        self._closed = False
        stamp = int(time.time()) if mtime is None else mtime
        self._sink.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", stamp & 0xFFFFFFFF) + b"\x00\x03")

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > self._block_size:  # keep one block back: the last must be finished
            self._submit(bytes(self._buffer[: self._block_size]), last=False)
            del self._buffer[: self._block_size]
        return len(data)

    def _submit(self, block: bytes, *, last: bool) -> None:
        self._crc = zlib.crc32(block, self._crc)
        self._size += len(block)
        self._pending.append(self._pool.submit(_deflate, block, self._dictionary, self._level, last))
        self._dictionary = block[-_WINDOW:]
        while len(self._pending) > 2 * self._threads:
            self._sink.write(self._pending.popleft().result())

    def flush(self) -> None:
        """Nothing to do: blocks are written as they complete (kept for file-object callers)."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._submit(bytes(self._buffer), last=True)
            self._buffer.clear()
            while self._pending:
                self._sink.write(self._pending.popleft().result())
            self._sink.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ParallelGzip:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
