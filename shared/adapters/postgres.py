"""PostgreSQL: connection parameters for an environment's database, without ever storing a password."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from shared.config import Settings
from shared.domain.environments import DatabaseConnection
from shared.errors import ServiceUnavailable
from shared.faults import Fault

ENTRA_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"

TokenProvider = Callable[[str], str]


@dataclass(frozen=True)
class ConnectionParameters:
    host: str
    port: int
    dbname: str
    user: str
    password: str | None
    sslmode: str
    connect_timeout: int

    def __repr__(self) -> str:  # the password must never reach a log line
        return f"ConnectionParameters(host={self.host!r}, port={self.port}, dbname={self.dbname!r}, user={self.user!r})"

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect(self, **options: object) -> psycopg.Connection:
        arguments: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "password": self.password,
            "sslmode": self.sslmode,
            "connect_timeout": self.connect_timeout,
            "application_name": "appbackups",
        }
        arguments.update(options)
        return psycopg.connect(**arguments)  # type: ignore[arg-type]

    def libpq_environment(self, database: str | None = None) -> dict[str, str]:
        """Variables for pg_dump/pg_restore/psql, so no secret appears on a command line."""
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("PG") and key not in ("DATABASE_URL",)
        }
        environment.update(
            PGHOST=self.host,
            PGPORT=str(self.port),
            PGDATABASE=database or self.dbname,
            PGUSER=self.user,
            PGSSLMODE=self.sslmode,
            PGCONNECT_TIMEOUT=str(self.connect_timeout),
            PGAPPNAME="appbackups",
        )
        if self.password is not None:
            environment["PGPASSWORD"] = self.password
        return environment


class PostgresGateway:
    def __init__(self, settings: Settings, token_provider: TokenProvider | None = None) -> None:
        self._settings = settings
        self._token_provider = token_provider

    def parameters(self, database: DatabaseConnection) -> ConnectionParameters:
        password: str | None = None
        if database.entra_auth:
            if self._token_provider is None:
                raise ServiceUnavailable(
                    "Entra authentication to PostgreSQL needs a managed identity, and none is configured.",
                    code="database_credentials_unavailable",
                )
            password = self._token_provider(ENTRA_SCOPE)
        elif database.password_setting:
            password = self._settings.setting(database.password_setting)
            if password is None:
                raise ServiceUnavailable(
                    f"The app setting {database.password_setting} that should hold the database password is not set.",
                    code="database_credentials_unavailable",
                )
        return ConnectionParameters(
            host=database.host,
            port=database.port,
            dbname=database.database,
            user=database.user,
            password=password,
            sslmode=database.ssl_mode,
            connect_timeout=self._settings.database_connect_timeout,
        )

    def ping(self, database: DatabaseConnection, timeout: int = 5) -> None:
        """Raises ServiceUnavailable with the reason when the database cannot be reached."""
        parameters = self.parameters(database)
        try:
            with parameters.connect(connect_timeout=timeout) as connection:
                connection.execute("SELECT 1")
        except psycopg.Error as error:
            raise ServiceUnavailable(
                f"Cannot reach database {parameters.describe()}: {first_line(error)}", code="database_unreachable"
            ) from error


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class DatabaseError(Fault):
    """A database operation failed; ``transient`` says whether trying again may help."""


_PERMANENT_STATES = {
    "28P01": "the password was refused",
    "28000": "the login was refused",
    "3D000": "the database does not exist",
    "42P01": "a table the query needs does not exist",
    "42703": "a column the query needs does not exist",
    "42601": "the query has a syntax error",
    "42501": "the user lacks a privilege it needs",
}


def classify(error: psycopg.Error, parameters: ConnectionParameters) -> DatabaseError:
    """Turn a driver error into one a person can act on, and say whether a retry may help."""
    state = getattr(error, "sqlstate", None)
    detail = first_line(error)
    where = parameters.describe()
    if state in _PERMANENT_STATES:
        return DatabaseError(f"Database {where}: {_PERMANENT_STATES[state]} ({detail}).", transient=False)
    if isinstance(error, psycopg.OperationalError) and "does not exist" in detail:
        return DatabaseError(f"Database {where}: the database does not exist ({detail}).", transient=False)
    if isinstance(error, psycopg.OperationalError) and "authentication failed" in detail:
        return DatabaseError(f"Database {where}: the password was refused ({detail}).", transient=False)
    if isinstance(error, psycopg.ProgrammingError | psycopg.DataError):
        return DatabaseError(f"Database {where}: {detail}.", transient=False)
    return DatabaseError(f"Database {where}: the connection failed or dropped ({detail}).", transient=True)


CLIENT_ROOT = Path("/usr/lib/postgresql")  # where Debian installs each major's client, side by side


def tool_dir(server_version: int | None, configured: str | None = None, root: Path = CLIENT_ROOT) -> str | None:
    """Which client tools to run. A configured directory wins. Otherwise, for a server, the
    installed client closest to its major version from above — pg_dump must be at least the
    server's major, and pg_restore 17+ writes settings that older servers reject — and without a
    server, the newest client (it reads every older archive). None means: whatever is on PATH."""
    if configured:
        return configured
    majors = sorted(
        int(entry.name)
        for entry in (root.iterdir() if root.is_dir() else ())
        if entry.name.isdigit() and (entry / "bin" / "pg_dump").exists()
    )
    if server_version:
        fitting = [major for major in majors if major >= server_version // 10000]
        return str(root / str(fitting[0]) / "bin") if fitting else None
    return str(root / str(majors[-1]) / "bin") if majors else None


def server_version(parameters: ConnectionParameters) -> int:
    """The server's version number (e.g. 150020), read from a short connection."""
    try:
        with parameters.connect() as connection:
            return int(connection.info.server_version)
    except psycopg.Error as error:
        raise classify(error, parameters) from error


def postgres_tool(name: str, bin_dir: str | None) -> str:
    """Path of pg_dump / pg_restore / psql: from the given directory, else from PATH."""
    if bin_dir:
        return os.path.join(bin_dir, name)
    found = shutil.which(name)
    if found is None:
        raise DatabaseError(f"{name} is not installed on this host (set APPBACKUPS_POSTGRES_BIN_DIR).", transient=False)
    return found


# Every file document row, whatever its flags: what a restore must not delete from the file store.
ALL_FILE_DOCUMENTS_QUERY = 'SELECT "__uuid__" FROM "system$filedocument"'

DEFAULT_FILE_DOCUMENT_QUERY = (
    'SELECT "__uuid__" FROM "system$filedocument" WHERE hascontents AND NOT deleteafterdownload'
)


class ExportedSnapshot:
    """A REPEATABLE READ, READ ONLY transaction whose snapshot is exported, so that pg_dump
    (``--snapshot``) and our own queries see exactly the same data. Writers are never blocked."""

    def __init__(self, parameters: ConnectionParameters) -> None:
        self.parameters = parameters
        self._connection: psycopg.Connection | None = None
        self.snapshot_id = ""

    def __enter__(self) -> ExportedSnapshot:
        try:
            connection = self.parameters.connect()
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            connection.read_only = True
            row = connection.execute("SELECT pg_export_snapshot()").fetchone()
        except psycopg.Error as error:
            raise classify(error, self.parameters) from error
        self._connection = connection
        self.snapshot_id = str(row[0]) if row else ""
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error):  # a lost connection has nothing to roll back
                self._connection.rollback()
            self._connection.close()

    @property
    def connection(self) -> psycopg.Connection:
        assert self._connection is not None
        return self._connection

    @property
    def server_version(self) -> int:
        return int(self.connection.info.server_version)

    def database_size(self) -> int:
        try:
            row = self.connection.execute("SELECT pg_database_size(current_database())").fetchone()
        except psycopg.Error as error:
            raise classify(error, self.parameters) from error
        return int(row[0]) if row else 0

    def file_document_uuids(
        self, query: str | None = None, *, default: str = DEFAULT_FILE_DOCUMENT_QUERY, batch_size: int = 2000
    ) -> Iterator[str]:
        """The uuids of the referenced file documents, distinct, in byte order (COLLATE "C"),
        which is also the order Blob Storage lists names in, so both can be merged as streams.
        Without an environment ``query``, the Mendix table is read — and a database that has no
        such table yet (a new, empty one) has no file documents."""
        if query is None and not self._has_file_document_table():
            return
        inner = query or default
        statement = (
            f'SELECT DISTINCT ref.file_uuid::text COLLATE "C" AS file_uuid FROM ({inner}) AS ref(file_uuid) '  # noqa: S608 - the query is the environment's own, set by a namespace admin
            "WHERE ref.file_uuid IS NOT NULL ORDER BY 1"
        )
        try:
            with self.connection.cursor(name="appbackups_files") as cursor:
                cursor.itersize = batch_size
                cursor.execute(statement.encode())
                for (file_uuid,) in cursor:
                    yield str(file_uuid)
        except psycopg.Error as error:
            raise classify(error, self.parameters) from error

    def count_file_documents(self, query: str | None = None, *, default: str = DEFAULT_FILE_DOCUMENT_QUERY) -> int:
        """How many uuids ``file_document_uuids`` will yield, read in the same snapshot: a real total
        for progress."""
        if query is None and not self._has_file_document_table():
            return 0
        statement = f"SELECT count(DISTINCT ref.file_uuid) FROM ({query or default}) AS ref(file_uuid)"  # noqa: S608 - as above
        try:
            row = self.connection.execute(statement.encode()).fetchone()
        except psycopg.Error as error:
            raise classify(error, self.parameters) from error
        return int(row[0]) if row else 0

    def _has_file_document_table(self) -> bool:
        try:
            row = self.connection.execute(
                """SELECT to_regclass('public."system$filedocument"') IS NOT NULL"""
            ).fetchone()
        except psycopg.Error as error:
            raise classify(error, self.parameters) from error
        return bool(row and row[0])


class DumpProcess:
    """``pg_dump -Fc -O -x`` of an exported snapshot, its output read as a stream."""

    def __init__(self, parameters: ConnectionParameters, snapshot_id: str | None, bin_dir: str | None) -> None:
        command = [postgres_tool("pg_dump", bin_dir), "--format=custom", "--no-owner", "--no-privileges"]
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
            message = bytes(self._stderr).decode(errors="replace").strip().splitlines()
            reason = message[-1] if message else f"exit code {returncode}"
            transient = any(word in reason for word in ("connection", "terminat", "server closed", "timeout"))
            raise DatabaseError(f"pg_dump of {self._parameters.describe()} failed: {reason}", transient=transient)

    def cancel(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()


# Everything the restored dump does not bring itself goes, in the same transaction as the restore:
# every schema but the system ones (with all they hold), and large objects.
_RESET_DATABASE = b"""
DO $reset$
DECLARE target record;
BEGIN
  FOR target IN
    SELECT nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema')
      AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%'
  LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', target.nspname);
  END LOOP;
  PERFORM lo_unlink(oid) FROM pg_largeobject_metadata;
END
$reset$;
"""


def dump_schemas(dump: Iterator[bytes], bin_dir: str | None) -> set[str]:
    """The schemas a custom-format dump creates, read from its table of contents."""
    process = subprocess.Popen(
        [postgres_tool("pg_restore", bin_dir), "--list"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    feeder = threading.Thread(target=_feed, args=(dump, process.stdin, None), daemon=True)
    errors = _Collector(process.stderr)
    feeder.start()
    assert process.stdout is not None
    listing = process.stdout.read()
    process.wait()
    feeder.join()
    errors.join()
    if process.returncode != 0:
        raise DatabaseError(
            f"The dump is not a readable pg_dump custom-format archive: {errors.text()}", transient=False
        )
    schemas = set()
    for line in listing.decode(errors="replace").splitlines():
        parts = line.split()
        if not line.startswith(";") and len(parts) >= 6 and parts[3] == "SCHEMA" and parts[4] == "-":
            schemas.add(parts[5])
    return schemas


def _feed(chunks: Iterator[bytes], sink: object, errors: list[BaseException] | None) -> None:
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


def restore_atomically(
    parameters: ConnectionParameters,
    dump: Callable[[], Iterator[bytes]],
    bin_dir: str | None,
    *,
    before_commit: Callable[[int], None] | None = None,
) -> None:
    """Replace the database's content with the dump in one transaction.

    pg_restore turns the dump into SQL and pipes it straight into psql, which runs it after our
    BEGIN and a reset that drops everything that was there. psql then waits on a pipe of ours for
    its last command: COMMIT is written there only when pg_restore finished cleanly and
    ``before_commit`` (the caller's last checks) returned. ``before_commit`` gets the transaction's
    id, so that a caller that dies right after the COMMIT can learn later whether it committed
    (``transaction_committed``). On any failure psql is stopped first; the open transaction dies with
    its connection and the database stays exactly as it was."""
    bin_dir = tool_dir(server_version(parameters), bin_dir)
    reset = _RESET_DATABASE.decode()
    if "public" not in dump_schemas(dump(), bin_dir):
        reset += "CREATE SCHEMA public;\n"
    restore = subprocess.Popen(
        [postgres_tool("pg_restore", bin_dir), "--no-owner", "--no-privileges", "--file=-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    commit_read, commit_write = os.pipe()
    txid_read, txid_write = os.pipe()
    try:
        apply = subprocess.Popen(
            [
                postgres_tool("psql", bin_dir),
                "--no-psqlrc",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                "--output=/dev/null",
                "--command=BEGIN",
                f"--command={reset}",
                "--file=-",
                f"--file=/dev/fd/{commit_read}",
            ],
            stdin=restore.stdout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=parameters.libpq_environment(),
            pass_fds=(commit_read, txid_write),
        )
    finally:
        os.close(commit_read)
        os.close(txid_write)
    assert restore.stdout is not None
    restore.stdout.close()  # psql owns the read end now
    feed_errors: list[BaseException] = []
    feeder = threading.Thread(target=_feed, args=(dump(), restore.stdin, feed_errors), daemon=True)
    restore_errors = _Collector(restore.stderr)
    apply_errors = _Collector(apply.stderr)
    feeder.start()
    committed = restored = False
    try:
        feeder.join()
        restored = restore.wait() == 0 and not feed_errors
        if restored and apply.poll() is None:
            transaction = _transaction_id(commit_write, txid_read, txid_write)
            if transaction is not None and apply.poll() is None:
                if before_commit is not None:
                    before_commit(transaction)
                os.write(commit_write, b"COMMIT;\n")
                committed = True
    finally:
        os.close(commit_write)
        os.close(txid_read)
        if not committed:
            apply.kill()  # the open transaction dies with the connection
            restore.kill()
        feeder.join(timeout=10)
        restore.wait()
        apply.wait()
        restore_errors.join()
        apply_errors.join()
    if committed and apply.returncode == 0:
        return
    psql_reason = apply_errors.text() if apply.returncode > 0 else ""
    if psql_reason or restored:
        reason = psql_reason or f"psql exit code {apply.returncode}"
        transient = any(word in reason for word in ("connection", "terminat", "server closed", "timeout"))
        raise DatabaseError(
            f"Restoring into {parameters.describe()} failed and was rolled back: {reason}", transient=transient
        )
    raise DatabaseError(
        f"Restoring into {parameters.describe()} failed and was rolled back: "
        f"{_restore_failure(feed_errors, restore_errors.text())}",
        transient=bool(feed_errors),
    )


def _transaction_id(commands: int, answers: int, answer_fd: int) -> int | None:
    """Ask the waiting psql for its transaction's id (written to a pipe of ours); None if psql died."""
    os.write(
        commands,
        f"\\pset tuples_only on\n\\pset format unaligned\nSELECT txid_current() \\g /dev/fd/{answer_fd}\n".encode(),
    )
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(answers, 64)
        if not chunk:
            return None
        line += chunk
    return int(line.strip())


def transaction_committed(parameters: ConnectionParameters, transaction: int) -> bool | None:
    """Did the transaction commit? True or False once it has ended; None while it is still running
    (its connection not yet gone) or when the server no longer knows it."""
    try:
        with parameters.connect() as connection:
            row = connection.execute("SELECT txid_status(%s)", (transaction,)).fetchone()
    except psycopg.Error as error:
        raise classify(error, parameters) from error
    status = row[0] if row else None
    if status == "committed":
        return True
    if status == "aborted":
        return False
    return None


def _restore_failure(feed_errors: list[BaseException], restore_text: str) -> str:
    if feed_errors:
        return f"reading the dump failed: {type(feed_errors[0]).__name__}: {feed_errors[0]}"
    return f"pg_restore failed: {restore_text or 'no message'}"


class _Collector:
    """Keeps the last lines a process writes to stderr."""

    def __init__(self, stream: object) -> None:
        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._lines.append(line.decode(errors="replace").rstrip())
            del self._lines[:-20]

    def join(self) -> None:
        self._thread.join(timeout=10)

    def text(self) -> str:
        errors = [line for line in self._lines if "ERROR" in line or "error" in line or "FATAL" in line]
        return (errors or self._lines or [""])[-1].strip()
