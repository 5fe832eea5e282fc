"""A stored (uncompressed) custom-format dump rewritten, as a stream, with its data compressed as
``pg_dump -Fc`` compresses it: the database-only download (docs/decisions/0005)."""

from __future__ import annotations

import struct
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from shared.faults import Fault

MAGIC = b"PGDMP"
_CUSTOM = 1  # archCustom
_BLK_DATA = 1
_BLK_BLOBS = 3
_GZIP = 1  # pg_compress_algorithm PG_COMPRESSION_GZIP (archive 1.15 on)
_SEGMENT = 1024 * 1024
_WINDOW = 32 * 1024
_EMIT = 256 * 1024  # output is yielded in pieces of about this size


class UnreadableDump(Fault):
    """The dump ends or breaks off where its format says more must follow."""


class _Source:
    """Exact reads from a stream of chunks."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._chunks = iter(stream)
        self._buffer = b""
        self._position = 0

    def _fill(self, size: int) -> bool:
        while len(self._buffer) - self._position < size:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return False
            self._buffer = self._buffer[self._position :] + chunk
            self._position = 0
        return True

    def read(self, size: int) -> bytes:
        if not self._fill(size):
            raise UnreadableDump("The database dump ends in the middle of an entry.")
        data = self._buffer[self._position : self._position + size]
        self._position += size
        return data

    def at_end(self) -> bool:
        return not self._fill(1)

    def rest(self) -> Iterator[bytes]:
        if self._position < len(self._buffer):
            yield self._buffer[self._position :]
        self._buffer, self._position = b"", 0
        yield from self._chunks


def _segment(block: bytes, dictionary: bytes, level: int, last: bool) -> bytes:
    compressor = (
        zlib.compressobj(level, zlib.DEFLATED, -15, zdict=dictionary)
        if dictionary
        else zlib.compressobj(level, zlib.DEFLATED, -15)
    )
    return compressor.compress(block) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class _ZlibStream:
    """One zlib stream, deflated on the pool a segment at a time; ``write`` and ``finish`` give the
    compressed bytes ready so far, in order. As pigz does: each segment is primed with the 32 KiB before
    it and ended with a sync flush, so the pieces join into one stream (zlib releases the GIL)."""

    def __init__(self, pool: ThreadPoolExecutor, level: int, threads: int) -> None:
        self._pool = pool
        self._level = level
        self._threads = threads
        self._pending: deque[Future[bytes]] = deque()
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._dictionary = b""
        self._adler = 1
        self._started = False

    def _submit(self, *, last: bool) -> None:
        block = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        self._adler = zlib.adler32(block, self._adler)
        self._pending.append(self._pool.submit(_segment, block, self._dictionary, self._level, last))
        self._dictionary = block[-_WINDOW:]

    def _head(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return b"\x78\x9c"

    def write(self, data: bytes) -> Iterator[bytes]:
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= _SEGMENT:
            self._submit(last=False)
        while len(self._pending) > 2 * self._threads or (self._pending and self._pending[0].done()):
            yield self._head() + self._pending.popleft().result()

    def finish(self) -> Iterator[bytes]:
        self._submit(last=True)
        while self._pending:
            piece = self._head() + self._pending.popleft().result()
            yield piece + (struct.pack(">I", self._adler & 0xFFFFFFFF) if not self._pending else b"")


class _Recompressor:
    def __init__(self, source: _Source, level: int, threads: int) -> None:
        self._source = source
        self._level = level
        self._threads = threads
        self._int_size = 4
        self._version = (0, 0)

    # -- the archive's primitives, as pg_backup_archiver.c writes them ----------------------------

    def _int_bytes(self) -> bytes:
        return self._source.read(1 + self._int_size)

    def _value(self, raw: bytes) -> int:
        value = int.from_bytes(raw[1:], "little")
        return -value if raw[0] else value

    def _encode(self, value: int) -> bytes:
        return bytes([1 if value < 0 else 0]) + abs(value).to_bytes(self._int_size, "little")

    def _int(self, out: list[bytes]) -> int:
        raw = self._int_bytes()
        out.append(raw)
        return self._value(raw)

    def _string(self, out: list[bytes]) -> str | None:
        length = self._int(out)
        if length < 0:
            return None
        data = self._source.read(length)
        out.append(data)
        return data.decode(errors="replace")

    # -- the parts ---------------------------------------------------------------------------------

    def run(self) -> Iterator[bytes]:
        head = self._source.read(len(MAGIC) + 6)
        if not head.startswith(MAGIC):
            yield head
            yield from self._source.rest()
            return
        major, minor, _revision, int_size, off_size, archive_format = head[len(MAGIC) :]
        self._version, self._int_size = (major, minor), int_size
        if archive_format != _CUSTOM or not (1, 12) <= self._version <= (1, 16):
            yield head
            yield from self._source.rest()
            return
        out = [head]
        if self._version < (1, 15):
            raw = self._int_bytes()
            compressed = self._value(raw) != 0
            out.append(raw if compressed else self._encode(self._level))
        else:
            raw = self._source.read(1)
            compressed = raw[0] != 0
            out.append(raw if compressed else bytes([_GZIP]))
        if compressed:
            yield b"".join(out)
            yield from self._source.rest()
            return
        for _ in range(7):  # the creation time
            self._int(out)
        for _ in range(3):  # database name, server version, pg_dump version
            self._string(out)
        yield b"".join(out)
        yield from self._toc(off_size)
        with ThreadPoolExecutor(self._threads, thread_name_prefix="dump-deflate") as pool:
            while not self._source.at_end():
                yield from self._block(pool)

    def _toc(self, off_size: int) -> Iterator[bytes]:
        out: list[bytes] = []
        count = self._int(out)
        for _ in range(count):
            self._int(out)  # dump id
            self._int(out)  # had a data dumper
            for _ in range(4):  # table oid, oid, tag, description
                self._string(out)
            self._int(out)  # section
            for _ in range(5):  # definition, drop statement, copy statement, namespace, tablespace
                self._string(out)
            if self._version >= (1, 14):
                self._string(out)  # table access method
            if self._version >= (1, 16):
                self._int(out)  # relkind
            self._string(out)  # owner
            self._string(out)  # "false" (with oids)
            while self._string(out) is not None:  # dependencies
                pass
            out.append(self._source.read(1 + off_size))  # the data offset (custom format)
            if sum(map(len, out)) >= _EMIT:
                yield b"".join(out)
                out = []
        yield b"".join(out)

    def _block(self, pool: ThreadPoolExecutor) -> Iterator[bytes]:
        kind = self._source.read(1)
        out = [kind]
        self._int(out)  # dump id
        if kind[0] not in (_BLK_DATA, _BLK_BLOBS):
            raise UnreadableDump(f"The database dump has a data block of unknown type {kind[0]}.")
        yield b"".join(out)
        if kind[0] == _BLK_DATA:
            yield from self._data(pool)
        else:
            while True:
                out = []
                oid = self._int(out)
                yield b"".join(out)
                if oid == 0:
                    return
                yield from self._data(pool)

    def _data(self, pool: ThreadPoolExecutor) -> Iterator[bytes]:
        """One table's data (or one large object): its pieces, up to the zero length that ends them,
        deflated into one zlib stream and written as pieces again."""
        stream = _ZlibStream(pool, self._level, self._threads)
        pending: list[bytes] = []
        pending_size = 0

        def pieces(compressed: Iterator[bytes]) -> Iterator[bytes]:
            for piece in compressed:
                if piece:
                    yield self._encode(len(piece)) + piece

        while True:
            length = self._value(self._int_bytes())
            if length <= 0:
                break
            pending.append(self._source.read(length))
            pending_size += length
            if pending_size >= _EMIT:
                yield from pieces(stream.write(b"".join(pending)))
                pending, pending_size = [], 0
        if pending:
            yield from pieces(stream.write(b"".join(pending)))
        yield from pieces(stream.finish())
        yield self._encode(0)


def recompressed(dump: Iterable[bytes], *, level: int = 6, threads: int = 2) -> Iterator[bytes]:
    """``dump`` (a custom-format dump) with its data compressed as ``pg_dump -Fc`` would: the header says gzip,
    each data block's pieces become one zlib stream, the table of contents is copied (a dump written to a
    pipe records no data offsets). Archive versions 1.12 to 1.16 (PostgreSQL 9.6 to 18); a dump of another
    version, or one already compressed, passes through unchanged (still one pg_restore reads)."""
    yield from _Recompressor(_Source(dump), level, threads).run()
