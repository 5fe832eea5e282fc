"""Writing a Full Snapshot archive as a stream: tar entries built from storage reads, gzip on the
way, every entry's checksum verified as it passes, memory bounded by a few chunks."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import queue
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

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
    """A file object over one member's chunks, produced ahead by the prefetch thread. When the
    member's last byte has been read, its size and checksum are verified."""

    def __init__(self, member: Member, chunks: queue.Queue[object]) -> None:
        self._member = member
        self._chunks = chunks
        self._chunk = memoryview(b"")
        self._offset = 0
        self._digest = hashlib.new(member.algorithm, usedforsecurity=False)
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
        self._digest.update(data)
        self._read += len(data)
        if self._read == self._member.size and size > 0:
            self.finish()
        return data

    def finish(self) -> None:
        while self._offset >= len(self._chunk):
            item = self._next()
            if item is _END:
                break
            self._chunk, self._offset = memoryview(item), 0  # type: ignore[arg-type]
        else:
            raise ChecksumMismatch(f"{self._member.path} is longer in storage than its {self._member.size} bytes.")
        if self._digest.hexdigest() != self._member.digest:
            raise ChecksumMismatch(f"{self._member.path} does not match its {self._member.algorithm.upper()} checksum.")


def _prefetch(members: list[Member] | Iterator[Member], lanes: queue.Queue[object], stop: threading.Event) -> None:
    """Read members in order into per-member chunk queues, a few chunks ahead of the archiver."""
    try:
        for member in members:
            chunks: queue.Queue[object] = queue.Queue(maxsize=4)
            lanes.put((member, chunks))
            try:
                for chunk in member.read():
                    if stop.is_set():
                        return
                    chunks.put(chunk)
                chunks.put(_END)
            except BaseException as error:
                chunks.put(error)
                return
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
            gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=compress_level, mtime=now) as compressed,  # type: ignore[arg-type]
            tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as archive,
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
