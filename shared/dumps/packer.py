"""Chunking and packing a large dump in a process of its own, beside the worker's file copies rather than taking
turns with them for one interpreter lock (docs/decisions/0021).

The worker sends the job, then the dump in frames (an 8-byte length, then the bytes; an empty frame ends the
dump), then one command: commit (``C``). The packer answers with one JSON line: what the manifest says of the
dump, or the error that ended it. Anything else — an abort, the worker gone (its end of the pipe closed) —
and the packer ends without committing: packs it wrote stay (complete objects that pruning reclaims when
nothing refers to them), as when a worker dies while packing in its own process."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import struct
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from shared.adapters.metering import Request, StorageMeter
from shared.config import Containers, StorageConnection
from shared.faults import Fault, is_transient

_HEADER = struct.Struct(">Q")
COMMIT = b"C"
_PROJECT = Path(__file__).resolve().parents[2]


class PackerFailed(Fault):
    """The dump's packer process ended with an error, or without answering."""


class ProcessDumpWriter:
    """A ``DumpWriter`` whose chunking, compression and pack uploads run in a child process."""

    chunked = True

    def __init__(
        self,
        storage: StorageConnection,
        namespace: str,
        folder: str,
        previous_folder: str | None,
        meter: StorageMeter | None = None,
    ) -> None:
        self._meter = meter
        self._result: dict[str, Any] | None = None
        self._process = subprocess.Popen(
            [sys.executable, "-m", "shared.dumps.packer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=_PROJECT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)},
        )
        job = {
            "storage": asdict(storage),
            "namespace": namespace,
            "folder": folder,
            "previousFolder": previous_folder,
            "metered": meter is not None,
        }
        self._send(json.dumps(job).encode())

    def _send(self, data: bytes) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(_HEADER.pack(len(data)))
            stdin.write(data)
        except (BrokenPipeError, ValueError):
            self._raise_answer()

    @property
    def sha256(self) -> str:
        return str(self._answer()["sha256"])

    @property
    def size(self) -> int:
        return int(self._answer()["size"])

    @property
    def peak_rss_mib(self) -> float:
        """The packer's own peak memory (the worker's does not include it)."""
        return float(self._answer()["peakRssMiB"])

    def write_all(self, stream: Iterable[bytes]) -> None:
        for block in stream:
            if block:
                self._send(block)
        self._send(b"")

    def commit(self) -> dict[str, Any]:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(COMMIT)
            stdin.close()
        except BrokenPipeError:
            pass
        return dict(self._answer()["layout"])

    def abort(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()

    def _answer(self) -> dict[str, Any]:
        if self._result is None:
            self._result = self._read_answer()
        return self._result

    def _raise_answer(self) -> None:
        self._answer()
        raise PackerFailed("The dump's packer stopped reading before the dump ended.", transient=True)

    def _read_answer(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        code = self._process.wait()
        try:
            answer = json.loads(line) if line else {}
        except ValueError:
            answer = {}
        if "error" in answer:
            raise PackerFailed(str(answer["error"]), transient=bool(answer.get("transient")))
        if code != 0 or "layout" not in answer:
            raise PackerFailed(f"The dump's packer ended (exit code {code}) without an answer.", transient=True)
        if self._meter is not None:
            for service, kind, container, prefix, count in answer.get("requests", []):
                self._meter.add(Request(service, kind, container, prefix), count)
        return answer


class ProcessPacker:
    """Makes a ``ProcessDumpWriter`` for a backup: where the packer reaches storage, and the meter that counts its
    requests (the benchmarks')."""

    def __init__(self, storage: StorageConnection, meter: StorageMeter | None = None) -> None:
        self._storage = storage
        self._meter = meter

    def __call__(self, namespace: str, folder: str, previous_folder: str | None) -> ProcessDumpWriter:
        return ProcessDumpWriter(self._storage, namespace, folder, previous_folder, self._meter)


# -- the packer process ------------------------------------------------------------------------------


def _read_exactly(source: IO[bytes], size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise EOFError
    return data


def _frame(source: IO[bytes]) -> bytes:
    (size,) = _HEADER.unpack(_read_exactly(source, _HEADER.size))
    return _read_exactly(source, size) if size else b""


def _frames(source: IO[bytes]) -> Iterator[bytes]:
    while block := _frame(source):
        yield block


def _run(source: IO[bytes]) -> dict[str, Any]:
    from shared.adapters.blobs import AzureBlobStore
    from shared.clients import StorageClients
    from shared.dumps.store import previous_chunks
    from shared.dumps.writer import ChunkedDumpWriter

    job = json.loads(_frame(source))
    meter = StorageMeter() if job["metered"] else None
    clients = StorageClients(StorageConnection(**job["storage"]), meter=meter)
    backups = AzureBlobStore(clients.blob_service, Containers.BACKUPS)
    content = AzureBlobStore(clients.blob_service, Containers.CONTENT)
    previous = job["previousFolder"]
    writer = ChunkedDumpWriter(
        backups,
        content,
        job["namespace"],
        job["folder"],
        previous=previous_chunks(backups, previous) if previous else None,
    )
    try:
        writer.write_all(_frames(source))
        if source.read(1) != COMMIT:
            raise EOFError
        layout = writer.commit()
    except BaseException:
        writer.abort()
        raise
    requests = [[*asdict(request).values(), count] for request, count in (meter.counts() if meter else {}).items()]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "layout": layout,
        "size": writer.size,
        "sha256": writer.sha256,
        "requests": requests,
        "peakRssMiB": round(peak, 1),
    }


def main() -> int:
    source, answer = sys.stdin.buffer, sys.stdout
    try:
        result = _run(source)
    except EOFError:
        return 1  # aborted, or the worker is gone: nothing is committed
    except Exception as error:
        print(json.dumps({"error": str(error) or type(error).__name__, "transient": is_transient(error)}), file=answer)
        return 1
    print(json.dumps(result), file=answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
