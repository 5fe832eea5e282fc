"""The point-in-time seam on barman-cloud (docs/decisions/0009) for self-managed PostgreSQL: the window
from the archive's listing (listing.py); "as of T" is barman-cloud-restore of the base backup before T
and a temporary PostgreSQL that replays the archived WAL (fetched ahead, staging.py) to T and promotes."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import psycopg
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.adapters.pointintime import (
    ArchivePruned,
    InstantRefused,
    PointInTimeError,
    PointInTimeStopped,
    RecoveryWindow,
    TemporaryInstance,
)
from shared.adapters.pointintime.instance import (
    alive,
    fatal_line,
    free_port,
    kill_processes_in,
    postmaster_pid,
    processes_in,
    read_text,
    remove_shared_memory,
)
from shared.adapters.pointintime.listing import (
    Archive,
    BaseBackup,
    CommitTimes,
    Segment,
    newest_commit,
    read_archive,
    segment_bytes,
    segment_number,
    wal_file_name,
)
from shared.adapters.pointintime.staging import Stager, restore_script
from shared.domain.environments import DatabaseConnection
from shared.faults import crash_point

SERVER_ROOT = Path("/usr/lib/postgresql")  # Debian's server binaries, one folder per major
_PROVIDER = ("--cloud-provider", "azure-blob-storage")
_POLL = 0.25
_NO_POSTMASTER = 60.0  # seconds after pg_ctl start without a postmaster: it failed


def _conf(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class BarmanCloudArchive:
    """``container`` is where ``barman-cloud-wal-archive`` and ``barman-cloud-backup`` write, under
    ``prefix``; the barman tools authenticate with ``connection_string`` (Azurite, shared key) or with
    ``credential`` (barman's ``--credential``: ``managed-identity`` or ``azure-cli``). Temporary instances
    live under ``scratch_root``; as root, they and the tools run as ``run_as`` (PostgreSQL refuses root)."""

    def __init__(
        self,
        container: ContainerClient,
        scratch_root: str | Path,
        *,
        connection_string: str | None = None,
        credential: str | None = None,
        prefix: str = "barman",
        barman_bin_dir: str = "/usr/bin",
        server_root: Path = SERVER_ROOT,
        run_as: str = "postgres",
        user: str = "postgres",
        start_timeout: float = 3600.0,
    ) -> None:
        self._container = container
        self._scratch_root = Path(scratch_root)
        self._connection_string = connection_string
        self._credential = credential
        self._prefix = prefix.strip("/")
        self._barman_bin_dir = barman_bin_dir
        self._server_root = server_root
        self._run_as = run_as if os.geteuid() == 0 else None
        self._user = user
        self._start_timeout = start_timeout
        self._commits: dict[str, datetime | None] = {}

    # -- what the archived server and the tests use ------------------------------------------
    @property
    def url(self) -> str:
        """barman's destination URL. Against an emulator barman reads ``/<account>/<container>/<prefix>``
        from the path and the endpoint from the connection string; on Azure ``/<container>/<prefix>``."""
        return f"{self._container.url.rstrip('/')}/{self._prefix}"

    def tool_environment(self) -> dict[str, str]:
        """What the barman tools need in their environment (the archived server's too)."""
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if self._connection_string:
            environment["AZURE_STORAGE_CONNECTION_STRING"] = self._connection_string
        return environment

    def _tool(self, name: str, server: str, *arguments: str) -> list[str]:
        credential = ("--credential", self._credential) if self._credential else ()
        return [os.path.join(self._barman_bin_dir, name), *_PROVIDER, *credential, self.url, server, *arguments]

    def archive_command(self, server: str) -> str:
        """The ``archive_command`` that archives ``server``'s WAL here (gzip-compressed)."""
        command = self._tool("barman-cloud-wal-archive", server, "%p")
        command.insert(1, "--gzip")
        return " ".join(shlex.quote(part) if part != "%p" else part for part in command)

    def base_backup(self, server: str, host: str, port: int, user: str = "postgres") -> None:
        """Take a base backup of the running server (on its host: barman-cloud-backup reads its files)."""
        command = self._tool("barman-cloud-backup", server)
        command[1:1] = ["--immediate-checkpoint", "-J", "2", "-h", host, "-p", str(port), "-U", user]
        self._run(command, timeout=None, what=f"The base backup of {server}")

    # -- PointInTimeSource ---------------------------------------------------------------------
    def archive(self, server: str) -> Archive:
        return read_archive(self._container, self._prefix, server)

    def window(self, server: str) -> RecoveryWindow:
        archive = self.archive(server)
        return archive.window(self._commit_reader(archive))

    def _commit_reader(self, archive: Archive) -> CommitTimes:
        """The newest commit each segment records (pg_waldump), read once per segment: archived WAL
        never changes."""
        bin_dir = self._bin_dir(archive.server, archive.backups[0].version) if archive.backups else None

        def last_commit(segment: Segment) -> datetime | None:
            if segment.blob not in self._commits and bin_dir is not None:
                self._commits[segment.blob] = self._read_last_commit(segment, bin_dir)
            return self._commits.get(segment.blob)

        return last_commit

    def _read_last_commit(self, segment: Segment, bin_dir: Path) -> datetime | None:
        try:
            content = segment_bytes(self._container, segment)
        except (AzureError, ValueError) as error:
            message = f"WAL segment {segment.name} could not be read: {error}"
            raise PointInTimeError(message, transient=True) from error
        return newest_commit(content, segment.name, bin_dir, self._scratch_root)

    def _bin_dir(self, server: str, version: int) -> Path:
        bin_dir = self._server_root / str(version // 10000) / "bin"
        if not (bin_dir / "postgres").exists():
            raise PointInTimeError(
                f"PostgreSQL {version // 10000}'s server is not installed here ({bin_dir}): it is needed to read "
                f"{server}'s archive.",
                transient=False,
            )
        return bin_dir

    @contextlib.contextmanager
    def as_of(
        self,
        server: str,
        instant: datetime,
        database: str,
        *,
        on_started: Callable[[TemporaryInstance], None] = lambda instance: None,
        stop: threading.Event | None = None,
        login: DatabaseConnection | None = None,  # unused: the instance is read as its own superuser, on its socket
    ) -> Iterator[DatabaseConnection]:
        if instant.tzinfo is None:
            raise ValueError("the instant must carry its time zone")
        archive = self.archive(server)
        last_commit = self._commit_reader(archive)
        refusal = archive.window(last_commit).refusal(instant)
        backup = archive.backup_before(instant)
        if refusal is not None or backup is None:
            raise InstantRefused(refusal or f"No base backup of {server} ends before {instant.isoformat()}.")
        bin_dir = self._bin_dir(server, backup.version)
        # Recovery to a time stops at the first commit after it: without one, replay to the archive's end.
        newest_commit = archive.last_commit(last_commit)
        until_end = newest_commit is None or newest_commit <= instant
        self._scratch_root.mkdir(parents=True, exist_ok=True)
        directory = self._scratch_root / f"{re.sub(r'[^A-Za-z0-9_-]', '_', server)[:40]}-{uuid.uuid4().hex[:8]}"
        instance = TemporaryInstance(str(directory), free_port())
        self._make_directory(directory)
        on_started(instance)
        stack = contextlib.ExitStack()
        try:
            _check(stop, server, instant)
            data = directory / "data"
            self._make_directory(data)
            restore = self._tool("barman-cloud-restore", server, backup.id, str(data))
            if backup.tablespaces:  # never where the original server keeps them
                self._make_directory(directory / "tablespaces")
                for name in backup.tablespaces:
                    restore[1:1] = ["--tablespace", f"{name}:{directory / 'tablespaces' / name}"]
            what = f"Fetching base backup {backup.id} of {server}"
            self._run(restore, timeout=None, what=what, stop=stop, cwd=data)
            stager = stack.enter_context(self._stager(archive, backup, directory))
            self._configure(server, instance, instant, until_end)
            self._start(instance, bin_dir)
            self._wait_for_promotion(server, instant, instance, stop, stager)
            stack.close()
            self._check_database(instance, server, database, instant)
            crash_point("pointintime.instance.running")
            yield DatabaseConnection(
                host=instance.directory, port=instance.port, database=database, user=self._user, ssl_mode="disable"
            )
            self._stop(instance, bin_dir, "fast")
        finally:
            stack.close()
            self.release(instance)

    def release(self, instance: TemporaryInstance) -> None:
        directory = Path(instance.directory)
        if directory.parent.resolve() != self._scratch_root.resolve():
            raise ValueError(f"{directory} is not a temporary instance's directory (under {self._scratch_root})")
        data = directory / "data"
        pid_file = read_text(data / "postmaster.pid").splitlines()
        if postmaster_pid(pid_file) in processes_in(directory):  # not a stranger that got its pid since
            version = read_text(data / "PG_VERSION").strip()
            pg_ctl = self._server_root / version / "bin" / "pg_ctl"
            if pg_ctl.exists():
                with contextlib.suppress(subprocess.SubprocessError, OSError):
                    subprocess.run(
                        self._as_owner([str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop"]),
                        capture_output=True,
                        timeout=60,
                        check=False,
                    )
        kill_processes_in(directory)
        if len(pid_file) >= 7:  # a postmaster killed -9 leaves its small SysV segment behind
            remove_shared_memory(pid_file[6])
        shutil.rmtree(directory, ignore_errors=True)

    def prune(self, server: str, keep_from: datetime) -> ArchivePruned:
        """Remove the base backups before the newest one that ended by ``keep_from`` and the WAL before that
        one began, by barman-cloud-backup-delete's rule (docs/decisions/0009: its batch delete is one Azurite
        cannot serve). The WAL goes first and each backup.info last, so that a prune cut short leaves a listed
        backup the next prune finishes, never data of a backup nobody lists."""
        archive = self.archive(server)
        ended = [backup for backup in archive.backups if backup.end_time <= keep_from]
        if len(ended) < 2:
            return ArchivePruned()
        kept = ended[-1]
        removed = ended[:-1]
        others = {backup.begin_wal[:8] for backup in archive.backups if backup not in removed} - {kept.begin_wal[:8]}
        folder = f"{self._prefix}/{server}"
        try:
            wal = [
                blob.name
                for blob in self._container.list_blobs(name_starts_with=f"{folder}/wals/")
                if (name := wal_file_name(blob.name)) is not None
                and name[:24] < kept.begin_wal
                and name[:8] not in others
            ]
            for name in wal:
                self._delete_blob(name)
            for backup in removed:
                info = f"{folder}/base/{backup.id}/backup.info"
                data = [
                    blob.name
                    for blob in self._container.list_blobs(name_starts_with=f"{folder}/base/{backup.id}/")
                    if blob.name != info
                ]
                for name in [*data, info]:
                    self._delete_blob(name)
        except AzureError as error:
            raise PointInTimeError(f"The archive of {server} could not be pruned: {error}", transient=True) from error
        return ArchivePruned(tuple(backup.id for backup in removed), len(wal))

    def _delete_blob(self, name: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._container.delete_blob(name)

    # -- the temporary instance ----------------------------------------------------------------
    def _as_owner(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", self._run_as, "--", *command] if self._run_as else command

    def _make_directory(self, path: Path) -> None:
        path.mkdir(mode=0o700)
        if self._run_as:
            owner = pwd.getpwnam(self._run_as)
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def _run(
        self,
        command: list[str],
        *,
        timeout: float | None,
        what: str,
        stop: threading.Event | None = None,
        cwd: Path = Path("/"),
    ) -> None:
        """Run a tool as the instance's owner; in the instance's directory, so that release finds it."""
        process = subprocess.Popen(
            self._as_owner(command),
            env={**os.environ, **self.tool_environment()},
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = None if timeout is None else time.monotonic() + timeout
        error = b""
        try:
            while True:
                try:
                    _, error = process.communicate(timeout=_POLL)
                    break
                except subprocess.TimeoutExpired:
                    if stop is not None and stop.is_set():
                        raise PointInTimeStopped(f"{what} was stopped.") from None
                    if deadline is not None and time.monotonic() > deadline:
                        raise PointInTimeError(f"{what} took longer than {timeout:.0f} s.", transient=True) from None
        finally:
            if process.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)  # runuser's child too
                process.wait()
        if process.returncode != 0:
            lines = [line for line in error.decode(errors="replace").splitlines() if line.strip()]
            reason = next((line for line in reversed(lines) if "ERROR" in line), lines[-1] if lines else "no output")
            raise PointInTimeError(f"{what} failed (exit code {process.returncode}): {reason}", transient=True)

    @contextlib.contextmanager
    def _stager(self, archive: Archive, backup: BaseBackup, directory: Path) -> Iterator[Stager]:
        """The stage and the restore_command script that reads it (``restore.sh`` beside the data)."""
        stage = directory / "stage"
        self._make_directory(stage)
        script = directory / "restore.sh"
        fallback = self._tool("barman-cloud-wal-restore", archive.server)
        script.write_text(restore_script(stage, fallback), encoding="utf-8")
        script.chmod(0o755)
        first = segment_number(backup.begin_wal, backup.segment_size)
        segments = {segment.name: segment for segment in archive.segments if segment.number >= first}
        owner = pwd.getpwnam(self._run_as) if self._run_as else None
        stager = Stager(
            stage,
            list(segments),
            lambda name: segment_bytes(self._container, segments[name]),
            owner=(owner.pw_uid, owner.pw_gid) if owner else None,
        )
        try:
            stager.mark_absent(f"{archive.timeline + 1:08X}.history")  # what recovery probes for, twice
            stager.top_up()
            yield stager
        finally:
            stager.close()

    def _configure(self, server: str, instance: TemporaryInstance, instant: datetime, until_end: bool) -> None:
        """Recovery settings, and what keeps the instance private and harmless: no archiving (the
        restored settings would archive into the production archive), a unix socket in its own
        directory only, no TLS files or preloaded libraries of the original host."""
        data = Path(instance.directory) / "data"
        settings = {
            "restore_command": f"sh {shlex.quote(str(Path(instance.directory) / 'restore.sh'))} %f %p",
            "recovery_target_action": "promote",
            "recovery_target_timeline": "latest",
            "archive_mode": "off",
            "listen_addresses": "",
            "unix_socket_directories": instance.directory,
            "port": str(instance.port),
            "ssl": "off",
            "hot_standby": "off",
            "shared_preload_libraries": "",
            "logging_collector": "off",
            "log_destination": "stderr",
            "hba_file": str(data / "pg_hba.conf"),
            "ident_file": str(data / "pg_ident.conf"),
        }
        if not until_end:
            settings["recovery_target_time"] = instant.isoformat(sep=" ")
        lines = [f"# appbackups: a temporary instance of {server} as of {instant.isoformat()}"]
        lines += [f"{name} = {_conf(value)}" for name, value in settings.items()]
        with open(data / "postgresql.auto.conf", "a", encoding="utf-8") as auto:
            auto.write("\n" + "\n".join(lines) + "\n")
        (data / "postgresql.conf").touch()  # Debian keeps it outside the data directory
        (data / "pg_hba.conf").write_text("local all all trust\n", encoding="utf-8")
        (data / "pg_ident.conf").touch()
        (data / "recovery.signal").touch()
        (data / "standby.signal").unlink(missing_ok=True)
        if self._run_as:
            owner = pwd.getpwnam(self._run_as)
            for path in (data / name for name in ("postgresql.auto.conf", "postgresql.conf", "pg_hba.conf")):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            for name in ("pg_ident.conf", "recovery.signal"):
                os.chown(data / name, owner.pw_uid, owner.pw_gid)

    def _start(self, instance: TemporaryInstance, bin_dir: Path) -> None:
        directory = Path(instance.directory)
        options = f"-p {instance.port} -c archive_mode=off -c unix_socket_directories={shlex.quote(instance.directory)}"
        command = [str(bin_dir / "pg_ctl"), "-D", str(directory / "data"), "-l", str(directory / "server.log")]
        (directory / "server.log").touch()
        if self._run_as:
            owner = pwd.getpwnam(self._run_as)
            os.chown(directory / "server.log", owner.pw_uid, owner.pw_gid)
        result = subprocess.run(
            self._as_owner([*command, "-o", options, "-W", "start"]),
            env={**os.environ, **self.tool_environment()},
            cwd=directory,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            reason = result.stderr.decode(errors="replace").strip()
            raise PointInTimeError(f"The temporary instance did not start: {reason}", transient=True)

    def _wait_for_promotion(
        self, server: str, instant: datetime, instance: TemporaryInstance, stop: threading.Event | None, stager: Stager
    ) -> None:
        directory = Path(instance.directory)
        started = time.monotonic()
        deadline = started + self._start_timeout
        seen_pid = False
        while True:
            _check(stop, server, instant)
            stager.top_up()
            pid_file = read_text(directory / "data" / "postmaster.pid").splitlines()
            pid = postmaster_pid(pid_file)
            running = pid is not None and alive(pid)
            seen_pid = seen_pid or running
            # The postmaster's status (the pid file's 8th line, what pg_ctl -w reads) turns "ready" when it
            # accepts connections: with hot_standby off, only once recovery has ended and it has promoted.
            if running and len(pid_file) >= 8 and pid_file[7].strip() == "ready":
                with (
                    contextlib.suppress(psycopg.OperationalError),
                    psycopg.connect(
                        host=instance.directory, port=instance.port, user=self._user, dbname="postgres"
                    ) as connection,
                ):
                    row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
                    if row is not None and row[0] is False:
                        return
            elif not running and (
                seen_pid or fatal_line(directory / "server.log") or time.monotonic() > started + _NO_POSTMASTER
            ):
                raise self._failure(server, instant, directory / "server.log")
            if time.monotonic() > deadline:
                raise PointInTimeError(
                    f"The temporary instance of {server} as of {instant.isoformat()} did not finish its recovery in "
                    f"{self._start_timeout:.0f} s.",
                    transient=True,
                )
            time.sleep(_POLL)

    def _failure(self, server: str, instant: datetime, log: Path) -> PointInTimeError:
        text = read_text(log)
        fatal = fatal_line(log) or "the server exited without a FATAL message"
        restored = re.findall(r'restored log file "([0-9A-F]{24})" from archive', text)
        if "recovery ended before configured recovery target was reached" in fatal:
            after = f" after segment {restored[-1]}" if restored else ""
            return PointInTimeError(
                f"{server} cannot be restored to {instant.isoformat()}: recovery ended before that instant was "
                f"reached (the archive's WAL ends{after}; a segment is missing or not archived yet).",
                transient=False,
            )
        return PointInTimeError(
            f"The temporary instance of {server} as of {instant.isoformat()} stopped during recovery: {fatal}",
            transient=False,
        )

    def _check_database(self, instance: TemporaryInstance, server: str, database: str, instant: datetime) -> None:
        with psycopg.connect(
            host=instance.directory, port=instance.port, user=self._user, dbname="postgres", connect_timeout=10
        ) as connection:
            found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if found is None:
            raise PointInTimeError(
                f"Database {database} did not exist on {server} at {instant.isoformat()}.", transient=False
            )

    def _stop(self, instance: TemporaryInstance, bin_dir: Path, mode: str) -> None:
        data = Path(instance.directory) / "data"
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                self._as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "-t", "60", "stop"]),
                capture_output=True,
                timeout=90,
                check=False,
            )


def _check(stop: threading.Event | None, server: str, instant: datetime) -> None:
    if stop is not None and stop.is_set():
        raise PointInTimeStopped(f"Reading {server} as of {instant.isoformat()} was stopped.")
