"""A PostgreSQL cluster of our own that archives its WAL with barman-cloud (docs/decisions/0009): `make run`'s
demo server and the point-in-time tests' private clusters. initdb'd as the ``postgres`` user in a folder of
its own (which that user must be able to reach: under the git-ignored ``.run/``, not the pytest temp folder),
with no TCP listener (its unix socket lives in that folder, so its port is only a name and cannot clash),
archiving through ``BarmanCloudArchive.archive_command``. The machine's shared PostgreSQL is never touched.

Stopped, it leaves no process behind: every process working in its folder (the postmaster and its children,
an archive command still running) is killed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from shared.adapters.pointintime.barman import BarmanCloudArchive, free_port


def _newest_server() -> Path:
    """The newest PostgreSQL server installed (Debian's layout), 15 when none is found."""
    installed = sorted(
        (path for path in Path("/usr/lib/postgresql").glob("*/bin") if (path / "initdb").exists()),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    return installed[-1] if installed else Path("/usr/lib/postgresql/15/bin")


POSTGRES_BIN = _newest_server()
_PORT_FILE = "port"  # the port chosen at initdb, kept for the cluster's life: registrations name it
_ARCHIVING_CONF = "archiving.conf"  # rewritten at every start: the archive's URL may have changed


def as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run ``command`` as ``postgres``."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def clusters_folder(preferred: Path) -> Path:
    """``preferred`` (the git-ignored ``.run/`` of the checkout) when the ``postgres`` user can reach it; a
    clone under a folder closed to others (``/root``) gets one of its own in the system temp folder instead."""
    if os.geteuid() != 0:
        return preferred
    existing = next(path for path in (preferred, *preferred.parents) if path.exists())
    if all(os.stat(path).st_mode & 0o001 for path in (existing, *existing.parents)):
        return preferred
    checkout = hashlib.sha256(str(preferred.resolve()).encode()).hexdigest()[:10]
    fallback = Path(tempfile.gettempdir()) / f"appbackups-clusters-{checkout}"
    fallback.mkdir(mode=0o755, exist_ok=True)
    return fallback


def chown_to_postgres(path: Path) -> None:
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


def _conf(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class ArchivingCluster:
    """A cluster in ``directory`` (its data in ``data/``, its log in ``server.log``, its socket beside them),
    archiving as ``server`` into ``archive``."""

    directory: Path
    port: int
    server: str
    archive: BarmanCloudArchive

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def dsn(self, dbname: str = "postgres") -> str:
        return psycopg.conninfo.make_conninfo(host=str(self.directory), port=self.port, user="postgres", dbname=dbname)

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.dsn(dbname), autocommit=True)

    def running(self) -> bool:
        return bool(processes_in(self.directory))

    # -- its life ---------------------------------------------------------------------------------
    def initdb(self, *, fsync: bool = True) -> None:
        """A new cluster (the folder must not hold one)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        chown_to_postgres(self.directory)
        subprocess.run(
            as_postgres([str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N"]),
            cwd=self.directory,
            check=True,
            capture_output=True,
        )
        settings = {
            "port": str(self.port),
            "listen_addresses": "''",
            "unix_socket_directories": _conf(str(self.directory)),
            "wal_level": "replica",
            "archive_mode": "on",
            "fsync": "on" if fsync else "off",
            "log_line_prefix": "'%m [%p] '",
            "include_if_exists": _conf(_ARCHIVING_CONF),
        }
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        (self.directory / _PORT_FILE).write_text(f"{self.port}\n", encoding="utf-8")

    def start(self, *, archive_timeout: int = 30) -> None:
        """Start it, archiving into ``archive`` (its ``archive_command`` and the tools' environment as of now)."""
        conf = self.data / _ARCHIVING_CONF
        command = _conf(self.archive.archive_command(self.server))
        conf.write_text(f"archive_timeout = {archive_timeout}\narchive_command = {command}\n", encoding="utf-8")
        chown_to_postgres(conf)
        self.log.touch()
        chown_to_postgres(self.log)
        subprocess.run(
            as_postgres([str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "start"]),
            cwd=self.data,
            env={**os.environ, **self.archive.tool_environment()},
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "fast", *, timeout: float = 30.0) -> None:
        """Stop it and whatever still works in its folder (an archive command, what a crash left)."""
        subprocess.run(
            as_postgres([str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
            capture_output=True,
            check=False,
            timeout=timeout + 30,
        )
        deadline = time.monotonic() + 10
        while (left := processes_in(self.directory)) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    # -- its archive ------------------------------------------------------------------------------
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
                log = self.log.read_text(errors="replace")[-2000:]
                raise TimeoutError(f"{segment} not archived in {timeout} s (archiver: {row}); log:\n{log}")
            time.sleep(0.2)


def cluster_in(directory: Path, server: str, archive: BarmanCloudArchive) -> ArchivingCluster:
    """The cluster of ``directory``: the one already there (on the port it was made with), or one to initdb
    on a free port."""
    port_file = directory / _PORT_FILE
    if port_file.exists() and (directory / "data" / "PG_VERSION").exists():
        port = int(port_file.read_text(encoding="utf-8").strip())
    else:
        port = free_port()
    return ArchivingCluster(directory, port, server, archive)
