"""pg_dump of an exported snapshot as a stream, and reading a dump's table of contents."""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from shared.adapters.postgres.connection import ConnectionParameters, DatabaseError
from shared.adapters.postgres.tools import postgres_tool
from shared.faults import Fault


class DumpProcess:
    """``pg_dump -Fc -O -x`` of an exported snapshot, its output read as a stream."""

    def __init__(
        self, parameters: ConnectionParameters, snapshot_id: str | None, bin_dir: str | None, *, compress: bool = True
    ) -> None:
        command = [postgres_tool("pg_dump", bin_dir), "--format=custom", "--no-owner", "--no-privileges"]
        if not compress:
            command.append("--compress=0")
        command += ["--lock-wait-timeout=60000"]
        if snapshot_id:
            command.append(f"--snapshot={snapshot_id}")
        self._parameters = parameters
        self._stderr = bytearray()
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=parameters.libpq_environment(),
        )
        self._stderr_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_reader.start()

    def _drain_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr += line
            del self._stderr[:-16384]

    def chunks(self, size: int) -> Iterator[bytes]:
        assert self._process.stdout is not None
        while chunk := self._process.stdout.read(size):
            yield chunk

    def wait(self) -> None:
        returncode = self._process.wait()
        self._stderr_reader.join(timeout=5)
        if returncode != 0:
            reason = failure_reason(bytes(self._stderr).decode(errors="replace"), returncode)
            transient = any(word in reason for word in ("connection", "terminat", "server closed", "timeout"))
            raise DatabaseError(f"pg_dump of {self._parameters.describe()} failed: {reason}", transient=transient)

    def cancel(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()


def failure_reason(stderr: str, returncode: int) -> str:
    """pg_dump's own words for why it failed: its last error line, not the query it quotes after it."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line or "ERROR:" in line or "FATAL:" in line]
    return (errors or lines or [f"exit code {returncode}"])[-1]


@dataclass(frozen=True)
class DumpInfo:
    """What a custom-format dump's table of contents says of it."""

    server_version: int  # of the server it was dumped from, as server_version_num (150008); 0 if unknown
    server_version_text: str  # as pg_restore prints it ("15.8 (Debian 15.8-1)")
    archive_version: str  # the archive format ("1.14-0"): which pg_restore releases read it
    schemas: frozenset[str]  # the schemas it creates
    tables: frozenset[tuple[str, str]] = frozenset()  # (schema, table) of each table whose rows it holds
    sequence_sets: tuple[str, ...] = ()  # its SEQUENCE SET entries, as ``pg_restore --list`` lines

    @property
    def major(self) -> int:
        return self.server_version // 10000 if self.server_version >= 100000 else self.server_version // 100


# A feeder still writing when pg_restore has ended is at most in a read: it ends at its next write.
_FEEDER_GRACE_SECONDS = 1.0

_DUMPED_FROM = re.compile(r"^;\s+Dumped from database version: (\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)$")
_ARCHIVE_VERSION = re.compile(r"^;\s+Dump Version: (\S+)")


def server_version_number(major: int, minor: int, patch: int | None) -> int:
    """As server_version_num: 15.8 is 150008; 9.6.24 is 90624."""
    if major >= 10:
        return major * 10000 + minor
    return major * 10000 + minor * 100 + (patch or 0)


def dump_info(dump: Iterator[bytes], bin_dir: str | None) -> DumpInfo:
    """Read a custom-format dump's table of contents (``pg_restore --list``, which stops reading after
    it: the data is not streamed). Raises DatabaseError when this pg_restore cannot read it, and what reading
    the dump raised when that broke off first."""
    process = subprocess.Popen(
        [postgres_tool("pg_restore", bin_dir), "--list"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    feed_errors: list[BaseException] = []
    feeder = threading.Thread(target=feed, args=(dump, process.stdin, feed_errors), daemon=True)
    errors = Collector(process.stderr)
    feeder.start()
    assert process.stdout is not None
    listing = process.stdout.read()
    process.wait()
    feeder.join(timeout=_FEEDER_GRACE_SECONDS)  # pg_restore read what it needed; the rest is not waited for
    errors.join()
    if process.returncode != 0:
        if feed_errors:
            raise feed_errors[0]
        raise DatabaseError(
            f"The dump is not a readable pg_dump custom-format archive: {errors.text()}", transient=False
        )
    schemas, version, text, archive = set(), 0, "", ""
    tables: set[tuple[str, str]] = set()
    sequence_sets: list[str] = []
    for line in listing.decode(errors="replace").splitlines():
        if match := _DUMPED_FROM.match(line):
            major, minor, patch = int(match[1]), int(match[2] or 0), int(match[3]) if match[3] else None
            version = server_version_number(major, minor, patch)
            text = line.split(":", 1)[1].strip()
        elif match := _ARCHIVE_VERSION.match(line):
            archive = match[1]
        parts = line.split()
        if not line.startswith(";") and len(parts) >= 6 and parts[3] == "SCHEMA" and parts[4] == "-":
            schemas.add(parts[5])
        elif not line.startswith(";") and len(parts) >= 8 and parts[3:5] == ["TABLE", "DATA"]:
            tables.add((parts[5], " ".join(parts[6:-1])))  # ID; catalog oid TABLE DATA schema name owner
        elif not line.startswith(";") and parts[3:5] == ["SEQUENCE", "SET"]:
            sequence_sets.append(line)
    return DumpInfo(version, text, archive, frozenset(schemas), frozenset(tables), tuple(sequence_sets))


_SETVAL = re.compile(r"^SELECT pg_catalog\.setval\('((?:[^']|'')*)', (-?\d+), (true|false)\);$")


def sequence_values(dump: Iterator[bytes], info: DumpInfo, bin_dir: str | None) -> dict[str, tuple[int, bool]]:
    """What the dump sets each sequence to: its name as the dump writes it (a regclass literal) and
    (value, is_called). Only the table of contents is read."""
    if not info.sequence_sets:
        return {}
    with tempfile.NamedTemporaryFile("w", suffix=".list") as listing:
        listing.write("\n".join(info.sequence_sets) + "\n")
        listing.flush()
        process = subprocess.Popen(
            [postgres_tool("pg_restore", bin_dir), f"--use-list={listing.name}", "--file=-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        feed_errors: list[BaseException] = []
        feeder = threading.Thread(target=feed, args=(dump, process.stdin, feed_errors), daemon=True)
        errors = Collector(process.stderr)
        feeder.start()
        assert process.stdout is not None
        script = process.stdout.read()
        process.wait()
        feeder.join(timeout=_FEEDER_GRACE_SECONDS)
        errors.join()
    if process.returncode != 0:
        if feed_errors:
            raise feed_errors[0]
        raise DatabaseError(f"Reading the dump's sequences failed: {errors.text()}", transient=False)
    values = {}
    for line in script.decode(errors="replace").splitlines():
        if match := _SETVAL.match(line):
            values[match[1].replace("''", "'")] = (int(match[2]), match[3] == "true")
    return values


def dump_schemas(dump: Iterator[bytes], bin_dir: str | None) -> set[str]:
    """The schemas a custom-format dump creates, read from its table of contents. Reading the dump breaking
    off is a DatabaseError too (transient: a retry may read it whole)."""
    try:
        return set(dump_info(dump, bin_dir).schemas)
    except Fault:
        raise  # a database error, or a stored dump that failed its checks: already said in our terms
    except Exception as error:
        raise DatabaseError(f"reading the dump failed: {type(error).__name__}: {error}", transient=True) from error


def feed(chunks: Iterator[bytes], sink: object, errors: list[BaseException] | None) -> None:
    """Write ``chunks`` into a process's stdin; a reader that stops early is not an error."""
    try:
        for chunk in chunks:
            sink.write(chunk)  # type: ignore[attr-defined]
    except (BrokenPipeError, ValueError):
        pass
    except BaseException as error:
        if errors is not None:
            errors.append(error)
    finally:
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            sink.close()  # type: ignore[attr-defined]


class Collector:
    """Keeps the last lines a process writes to stderr, but those ``on_line`` takes (returns True for)."""

    def __init__(self, stream: object, on_line: Callable[[str], bool] | None = None) -> None:
        self._lines: list[str] = []
        self._on_line = on_line
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for raw in stream:  # type: ignore[attr-defined]
            line = raw.decode(errors="replace").rstrip()
            if self._on_line is not None and self._on_line(line):
                continue
            self._lines.append(line)
            del self._lines[:-20]

    def join(self) -> None:
        self._thread.join(timeout=10)

    def text(self) -> str:
        errors = [line for line in self._lines if "ERROR" in line or "error" in line or "FATAL" in line]
        return (errors or self._lines or [""])[-1].strip()
