"""A private PostgreSQL cluster that archives its WAL to Azurite with barman-cloud, for the point-in-time
tests: initdb'd as postgres under the git-ignored .run/tests/, on a free port, a base backup on demand,
stopped and removed at the end (with every process it or its archiver started)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from azure.storage.blob import ContainerClient

from shared.adapters.pointintime import TemporaryInstance
from shared.adapters.pointintime.barman import BarmanCloudArchive, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRATCH = (
    REPO_ROOT / ".run" / "tests"
)  # /.run/ is git-ignored; the postgres user can reach it, unlike /tmp/pytest-of-root
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def processes_in(directory: Path) -> list[int]:
    """Processes working inside ``directory`` (a cluster's postmaster and children, the archiver's tools)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cwd = os.readlink(entry / "cwd")
                if cwd == str(directory) or cwd.startswith(f"{directory}/"):
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
    return found


@dataclass
class ArchivedCluster:
    directory: Path
    port: int
    server: str
    archive: BarmanCloudArchive

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host=str(self.directory), port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def base_backup(self) -> None:
        self.archive.base_backup(self.server, str(self.directory), self.port)

    def switch_wal(self) -> str:
        """Close the current segment (pg_switch_wal); returns its name."""
        with self.connect() as connection:
            row = connection.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        return str(row[0])

    def wait_archived(self, segment: str, timeout: float = 60.0) -> None:
        """Until ``segment`` (and so every one before it) has been archived."""
        deadline = time.monotonic() + timeout
        while True:
            with self.connect() as connection:
                row = connection.execute("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver").fetchone()
            assert row is not None
            if row[0] is not None and row[0][:24] >= segment:
                return
            if time.monotonic() > deadline:
                log = (self.directory / "server.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"{segment} not archived in {timeout} s (archiver: {row}); log:\n{log}")
            time.sleep(0.2)


@contextlib.contextmanager
def archived_cluster(
    connection_string: str, container: str, *, archive_timeout: int = 30, server: str = "pitr-test"
) -> Iterator[ArchivedCluster]:
    """A cluster (with its own socket directory and no TCP listener) archiving into ``container``."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    directory = SCRATCH / f"cluster-{uuid.uuid4().hex[:8]}"
    directory.mkdir(mode=0o700)
    _chown_to_postgres(directory)
    archive = BarmanCloudArchive(
        ContainerClient.from_connection_string(connection_string, container),
        directory / "scratch",
        connection_string=connection_string,
    )
    cluster = ArchivedCluster(directory, free_port(), server, archive)
    try:
        subprocess.run(
            _as_postgres(
                [str(POSTGRES_BIN / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "-N"]
            ),
            cwd=directory,
            check=True,
            capture_output=True,
        )
        settings = {
            "port": str(cluster.port),
            "listen_addresses": "''",
            "unix_socket_directories": f"'{directory}'",
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_timeout": str(archive_timeout),
            "archive_command": "'" + archive.archive_command(server).replace("'", "''") + "'",
            "fsync": "off",
            "log_line_prefix": "'%m [%p] '",
        }
        with open(cluster.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        log = directory / "server.log"
        log.touch()
        _chown_to_postgres(log)
        subprocess.run(
            _as_postgres([str(POSTGRES_BIN / "pg_ctl"), "-D", str(cluster.data), "-l", str(log), "-w", "start"]),
            cwd=cluster.data,
            env={**os.environ, **archive.tool_environment()},
            check=True,
            capture_output=True,
        )
        (directory / "scratch").mkdir(mode=0o700)
        _chown_to_postgres(directory / "scratch")
        yield cluster
    finally:
        subprocess.run(
            _as_postgres([str(POSTGRES_BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            check=False,
        )
        deadline = time.monotonic() + 10
        while (left := processes_in(directory)) and time.monotonic() < deadline:
            for pid in left:  # an archive command still running, or what a test's crash left
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        shutil.rmtree(directory, ignore_errors=True)


def hold_as_of(arguments: dict[str, str]) -> None:
    """``python -m tests.support.archiving '{json}'``: a host that starts a temporary instance, prints it
    as a JSON line as soon as it exists, and holds it until it is killed (the crash tests)."""
    archive = BarmanCloudArchive(
        ContainerClient.from_connection_string(arguments["connection_string"], arguments["container"]),
        arguments["scratch_root"],
        connection_string=arguments["connection_string"],
    )

    def started(instance: TemporaryInstance) -> None:
        print(json.dumps(dataclasses.asdict(instance)), flush=True)

    with archive.as_of(
        arguments["server"], datetime.fromisoformat(arguments["instant"]), arguments["database"], on_started=started
    ):
        threading.Event().wait()


if __name__ == "__main__":
    hold_as_of(json.loads(sys.argv[1]))
