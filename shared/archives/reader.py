"""Reading an uploaded archive as a stream, refusing anything that is not a clean Full Snapshot.

Nothing is unpacked to disk and nothing is held whole in memory: the gzip stream is inflated in
bounded steps (counting every byte against a limit), and tar entries are checked one by one as
they pass — paths, types, names, duplicates — before their data is read."""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from shared.archives.fullsnapshot import DUMP, METADATA
from shared.faults import Fault

GZIP_MAGIC = b"\x1f\x8b"
DUMP_MAGIC = b"PGDMP"
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DIRECTORIES = re.compile(r"^(db|tree|tree/[0-9a-zA-Z]{2}|tree/[0-9a-zA-Z]{2}/[0-9a-zA-Z]{2})$")
_MAX_HEADER_READ = 16 * 1024 * 1024  # a tar header (PAX, long name) larger than this is an attack


class Refused(Fault):
    """The upload is not acceptable; the message says why."""


class _Inflated:
    """The gzip stream's content, inflated on demand, at most ``limit`` bytes in all."""

    def __init__(self, chunks: Iterator[bytes], limit: int) -> None:
        self._chunks = chunks
        self._limit = limit
        self._produced = 0
        self._inflater = zlib.decompressobj(wbits=31)
        self._input = b""
        self._output = bytearray()
        self._source_done = False
        self._finished = False

    def _more_input(self) -> bool:
        chunk = next(self._chunks, None)
        if chunk is None:
            self._source_done = True
            return False
        self._input += chunk
        return True

    def _inflate(self, wanted: int) -> None:
        while len(self._output) < wanted and not self._finished:
            if not self._input and not self._more_input():
                if not self._inflater.eof:
                    raise Refused("The gzip stream is truncated: the upload ended before the archive did.")
                self._finished = True
                return
            try:
                data = self._inflater.decompress(self._input, max(wanted - len(self._output), 64 * 1024))
            except zlib.error as error:
                raise Refused(f"The gzip stream is corrupted ({error}).") from error
            self._input = self._inflater.unconsumed_tail
            if self._inflater.eof:
                rest = self._inflater.unused_data
                if rest.lstrip(b"\x00") or (not rest and self._more_input() and self._input.lstrip(b"\x00")):
                    # Another gzip member follows (as pigz and concatenated gzips write).
                    self._input = (rest or self._input).lstrip(b"\x00")
                    self._inflater = zlib.decompressobj(wbits=31)
                else:
                    self._input = b""
            self._produced += len(data)
            if self._produced > self._limit:
                raise Refused(f"The archive expands beyond the limit of {self._limit} bytes.")
            self._output += data

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise Refused("The archive asked for an unbounded read; it is not a Full Snapshot.")
        self._inflate(size)
        data = bytes(self._output[:size])
        del self._output[:size]
        return data


class _CheckedTarInfo(tarfile.TarInfo):
    """Refuses extended headers (PAX, GNU long names) too large to be honest before tarfile reads
    them into memory, and sparse files, which a Full Snapshot never has."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_HEADERS and self.size > _MAX_HEADER_READ:
            raise Refused("The archive has a tar header larger than 16 MiB; it is not a Full Snapshot.")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise Refused(f"The archive has a sparse file, which is not accepted: {self.name!r}.")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


_EXTENDED_HEADERS = {
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
}


@dataclass(frozen=True)
class Entry:
    kind: str  # "metadata", "dump" or "file"
    path: str
    size: int
    stream: IO[bytes]
    file_uuid: str | None = None


def _clean_path(name: str) -> str:
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or "\\" in name:
        raise Refused(f"The archive has an absolute or non-portable path: {name!r}.")
    while name.startswith("./"):
        name = name[2:]
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise Refused(f"The archive has a path that leaves its folder or is empty: {name!r}.")
    return "/".join(parts)


def _classify(path: str) -> tuple[str, str | None]:
    if path == METADATA:
        return "metadata", None
    if path == DUMP:
        return "dump", None
    parts = path.split("/")
    if parts[0] == "tree" and UUID.match(parts[-1]):
        file_uuid = parts[-1]
        if len(parts) == 2:
            return "file", file_uuid
        if len(parts) == 4 and parts[1] == file_uuid[0:2] and parts[2] == file_uuid[2:4]:
            return "file", file_uuid
    raise Refused(
        f"The archive has an entry a Full Snapshot does not have: {path!r} (expected .metadata, db/db.backup, "
        "tree/xx/yy/<uuid> or tree/<uuid>)."
    )


def full_snapshot_entries(chunks: Iterator[bytes], *, expanded_limit: int) -> Iterator[Entry]:
    """The archive's entries, each checked before it is yielded; read each entry's stream to its end
    before asking for the next. Raises Refused, with the reason, for anything unacceptable."""
    inflated = _Inflated(chunks, expanded_limit)
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=inflated, mode="r|", tarinfo=_CheckedTarInfo) as archive:  # type: ignore[call-overload]
            for info in archive:
                path = _clean_path(info.name)
                if info.issym() or info.islnk():
                    raise Refused(f"The archive has a link, which is not accepted: {path!r}.")
                if info.ischr() or info.isblk() or info.isfifo() or info.isdev():
                    raise Refused(f"The archive has a device or special entry, which is not accepted: {path!r}.")
                if info.isdir():
                    if not _DIRECTORIES.match(path):
                        raise Refused(f"The archive has a folder a Full Snapshot does not have: {path!r}.")
                    continue
                if not info.isreg():
                    raise Refused(f"The archive has an entry of an unknown type: {path!r}.")
                kind, file_uuid = _classify(path)
                key = file_uuid.lower() if file_uuid else path
                if kind != "file":
                    if key in seen:
                        raise Refused(f"The archive has {path!r} twice.")
                    seen.add(key)
                stream = archive.extractfile(info)
                assert stream is not None
                yield Entry(kind, path, info.size, stream, file_uuid)
    except tarfile.ReadError as error:
        raise Refused(f"The upload is not a readable tar archive ({error}).") from error
    except EOFError as error:
        raise Refused("The archive is truncated.") from error
