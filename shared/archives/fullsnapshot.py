"""Writing a Full Snapshot archive as a stream: tar entries built from storage reads, gzip on the
way, every entry's checksum verified as it passes, memory bounded by a few chunks."""

from __future__ import annotations

import hashlib
import io
import json
import queue
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from shared.archives.pgzip import ParallelGzip
from shared.faults import Fault

METADATA = ".metadata"
DUMP = "db/db.backup"
TREE = "tree/"


def tree_path(file_uuid: str) -> str:
    """tree/xx/yy/<uuid>: the first and second pairs of characters of the uuid."""
    return f"{TREE}{file_uuid[0:2]}/{file_uuid[2:4]}/{file_uuid}"


def metadata_document(fields: dict[str, Any]) -> bytes:
    """.metadata: a JSON object whose values are all strings."""
    return json.dumps({key: "" if value is None else str(value) for key, value in fields.items()}, indent=2).encode()


class ChecksumMismatch(Fault):
    """Stored data does not match the checksum recorded when it was written."""


class Sink(Protocol):
    def write(self, data: bytes) -> object: ...


@dataclass(frozen=True)
class Member:
    """One archive entry: its path, size, the checksum to verify and how to read it."""

    path: str
    size: int
    algorithm: str  # "sha256" or "md5"
    digest: str
    read: Callable[[], Iterator[bytes]]


_END = object()


class _Prefetched:
    """A file object over one member's chunks, produced ahead by the prefetch threads (which also
    check the member's checksum). Reads exactly the member's size, and checks it has no more."""

    def __init__(self, member: Member, chunks: queue.Queue[object]) -> None:
        self._member = member
        self._chunks = chunks
        self._chunk = memoryview(b"")
        self._offset = 0
        self._read = 0

    def _next(self) -> object:
        item = self._chunks.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def read(self, size: int) -> bytes:
        pieces = []
        wanted = min(size, self._member.size - self._read)
        while wanted > 0:
            if self._offset >= len(self._chunk):
                item = self._next()
                if item is _END:
                    raise ChecksumMismatch(
                        f"{self._member.path} is shorter in storage than its {self._member.size} bytes."
                    )
                self._chunk, self._offset = memoryview(item), 0  # type: ignore[arg-type]
            piece = self._chunk[self._offset : self._offset + wanted]
            self._offset += len(piece)
            wanted -= len(piece)
            pieces.append(piece)
        data = b"".join(pieces)
        self._read += len(data)
        if self._read == self._member.size and size > 0:
            self.finish()
        return data

    def finish(self) -> None:
        """Consume the end of the member: its checksum verdict, or the bytes it should not have."""
        while self._offset >= len(self._chunk):
            item = self._next()
            if item is _END:
                return
            self._chunk, self._offset = memoryview(item), 0  # type: ignore[arg-type]
        raise ChecksumMismatch(f"{self._member.path} is longer in storage than its {self._member.size} bytes.")


SMALL_MEMBER = 4 * 1024 * 1024  # read whole, several at a time; larger ones are streamed
PREFETCH_PARALLELISM = 8


def _verified(member: Member, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The member's chunks; after the last one, a ChecksumMismatch if the digest disagrees."""
    digest = hashlib.new(member.algorithm, usedforsecurity=False)
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    if size != member.size:
        relation = "shorter" if size < member.size else "longer"
        raise ChecksumMismatch(f"{member.path} is {relation} in storage than its {member.size} bytes.")
    if digest.hexdigest() != member.digest:
        raise ChecksumMismatch(f"{member.path} does not match its {member.algorithm.upper()} checksum.")


def _read_whole(member: Member) -> list[bytes]:
    return list(_verified(member, member.read()))


def _prefetch(members: Iterator[Member], lanes: queue.Queue[object], stop: threading.Event) -> None:
    """Read members, in order, ahead of the archiver: small ones several at a time (their requests
    overlap), large ones streamed a few chunks ahead. Each lane carries one member's chunks, then
    ``_END`` — or the error that stopped it (a failed read, a checksum that disagrees)."""

    def publish(member: Member, whole: Future[list[bytes]]) -> None:
        chunks: queue.Queue[object] = queue.Queue()
        try:
            for chunk in whole.result():
                chunks.put(chunk)
            chunks.put(_END)
        except BaseException as error:
            chunks.put(error)
        lanes.put((member, chunks))

    try:
        with ThreadPoolExecutor(PREFETCH_PARALLELISM, thread_name_prefix="archive-read") as pool:
            pending: deque[tuple[Member, Future[list[bytes]]]] = deque()
            for member in members:
                if stop.is_set():
                    return
                if member.size <= SMALL_MEMBER:
                    pending.append((member, pool.submit(_read_whole, member)))
                    if len(pending) >= PREFETCH_PARALLELISM:
                        publish(*pending.popleft())
                    continue
                while pending:
                    publish(*pending.popleft())
                streamed: queue.Queue[object] = queue.Queue(maxsize=4)
                lanes.put((member, streamed))
                try:
                    for chunk in _verified(member, member.read()):
                        if stop.is_set():
                            return
                        streamed.put(chunk)
                    streamed.put(_END)
                except BaseException as error:
                    streamed.put(error)
                    return
            while pending:
                publish(*pending.popleft())
    finally:
        lanes.put(_END)


def write_archive(
    sink: Sink,
    metadata: bytes,
    members: Iterator[Member],
    *,
    compress_level: int,
    on_member: Callable[[Member], None] | None = None,
) -> None:
    """Write .metadata, then each member, as one gzip stream into ``sink``."""
    lanes: queue.Queue[object] = queue.Queue(maxsize=2)
    stop = threading.Event()
    reader = threading.Thread(target=_prefetch, args=(members, lanes, stop), name="archive-prefetch", daemon=True)
    reader.start()
    now = int(time.time())
    try:
        with (
            ParallelGzip(sink, level=compress_level, mtime=now) as compressed,
            tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as archive,  # type: ignore[call-overload]
        ):
            archive.copybufsize = 1 << 20
            archive.addfile(_info(METADATA, len(metadata), now), io.BytesIO(metadata))
            while (lane := lanes.get()) is not _END:
                member, chunks = lane  # type: ignore[misc]
                source = _Prefetched(member, chunks)
                archive.addfile(_info(member.path, member.size, now), source)  # type: ignore[arg-type]
                if member.size == 0:
                    source.finish()  # tarfile never reads an empty member
                if on_member is not None:
                    on_member(member)
    finally:
        stop.set()
        while reader.is_alive():  # unblock the reader if it waits on a full queue
            try:
                item = lanes.get(timeout=0.1)
                if isinstance(item, tuple):
                    _drain(item[1])
            except queue.Empty:
                pass
        reader.join()


def _drain(chunks: queue.Queue[object]) -> None:
    try:
        while True:
            chunks.get_nowait()
    except queue.Empty:
        return


def _info(path: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    return info
