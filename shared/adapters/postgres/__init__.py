"""PostgreSQL seam: the one way in to an environment's database. ``Databases`` is the Protocol the use cases
depend on, ``PostgresDatabases`` the real client tools, ``memory.py`` its twin (test_databases_contract.py)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Protocol

import psycopg

from shared.adapters.postgres.connection import (
    ConnectionParameters,
    Credentials,
    DatabaseError,
    SettingReader,
    TokenProvider,
    classify,
    first_line,
)
from shared.adapters.postgres.dump import DumpInfo, DumpProcess, dump_info, dump_schemas
from shared.adapters.postgres.restore import (
    RestoreCheckFailed,
    RestoreStopped,
    restore_atomically,
    transaction_committed,
)
from shared.adapters.postgres.scratch import (
    SCRATCH_PREFIX,
    ScratchDatabaseRefused,
    count_rows,
    create_scratch,
    drop_scratch,
    query_is_true,
    scratch_exists,
    table_rows,
)
from shared.adapters.postgres.snapshot import ALL_FILE_DOCUMENTS_QUERY, DEFAULT_FILE_DOCUMENT_QUERY, ExportedSnapshot
from shared.adapters.postgres.tools import server_version, tool_dir
from shared.domain.environments import DatabaseConnection
from shared.errors import ServiceUnavailable

__all__ = [
    "ALL_FILE_DOCUMENTS_QUERY",
    "DEFAULT_FILE_DOCUMENT_QUERY",
    "SCRATCH_PREFIX",
    "DatabaseError",
    "DatabaseSnapshot",
    "Databases",
    "DumpInfo",
    "DumpStream",
    "PostgresDatabases",
    "RestoreCheckFailed",
    "RestoreStopped",
    "ScratchDatabaseRefused",
]


class DumpStream(Protocol):
    """A dump being made: its bytes in chunks, then ``wait`` (raises if it failed); ``cancel`` stops it."""

    def chunks(self, size: int) -> Iterator[bytes]: ...

    def wait(self) -> None: ...

    def cancel(self) -> None: ...


class DatabaseSnapshot(Protocol):
    """One consistent view of a database, open until the context that gave it ends. Writers are never
    blocked meanwhile."""

    @property
    def server_version(self) -> int: ...

    def database_size(self) -> int: ...

    def count_file_documents(self, query: str | None = None) -> int: ...

    def file_document_uuids(self, query: str | None = None) -> Iterator[str]:
        """Distinct uuids of the referenced file documents, in byte order (how Blob Storage lists names)."""

    def table_rows(self) -> dict[str, int]:
        """Exact row counts of every user table (``schema."table"``), as of this view."""

    def not_carried(self) -> list[str]:
        """What the database has that its dump does not carry (database settings, extension versions,
        owners, grants), each in a few words; empty when the dump carries everything."""

    def dump(self, *, compress: bool = True) -> DumpStream:
        """A custom-format dump (``pg_dump -Fc -O -x``) of exactly this view; unless ``compress``, with its
        data left uncompressed (``--compress=0``: chunked storage compresses each chunk instead)."""


class Databases(Protocol):
    def ping(self, database: DatabaseConnection, timeout: int = 5) -> None:
        """Raises ServiceUnavailable with the reason when the database cannot be reached."""

    def snapshot(self, database: DatabaseConnection) -> AbstractContextManager[DatabaseSnapshot]:
        """One consistent view (an exported snapshot): what a backup reads, its dump included."""

    def referenced_files(
        self, database: DatabaseConnection, query: str | None
    ) -> AbstractContextManager[Iterator[str]]:
        """Every file document the database refers to now (whatever its flags: what a restore must not
        delete), or those ``query`` selects; distinct, in byte order."""

    def restore(
        self,
        database: DatabaseConnection,
        dump: Callable[[], Iterator[bytes]],
        *,
        before_commit: Callable[[int], None] | None = None,
        row_counts: Mapping[str, int] | None = None,
        stop: threading.Event | None = None,
        on_load: Callable[[int, int], None] | None = None,
    ) -> None:
        """Replace the database's content with the dump in one transaction. ``dump`` may be called more
        than once (each call streams the dump from its start). Before the COMMIT the loaded tables must
        hold ``row_counts`` rows (by schema."table"; RestoreCheckFailed otherwise); ``before_commit`` then
        gets the transaction's id and may raise to stop it; the database is then exactly as it was.
        ``on_load`` hears (tables loaded, tables in the dump); ``stop`` being set ends the restore promptly
        with RestoreStopped."""

    def transaction_committed(self, database: DatabaseConnection, transaction: int) -> bool | None:
        """True or False once the transaction has ended; None while it runs or when it is unknown."""

    def dump_schemas(self, dump: Iterator[bytes]) -> set[str]:
        """The schemas a custom-format dump creates; raises DatabaseError when it is not one."""

    def dump_info(self, dump: Iterator[bytes]) -> DumpInfo:
        """The server version a dump was made from, its archive format and schemas, read by the newest
        installed pg_restore (only its table of contents is read); raises DatabaseError when no installed
        pg_restore reads it."""

    def server_version(self, database: DatabaseConnection) -> int:
        """The server's version as server_version_num (150008)."""

    # -- for restore drills (scratch.py) -----------------------------------------------------------

    def create_scratch(self, server: DatabaseConnection, name: str) -> DatabaseConnection:
        """Create the scratch database ``name`` (``appbackups_verify_…``) on ``server``'s server, connecting
        as ``server`` does; an existing one (an earlier attempt's) is kept. Returns the connection to it.
        Raises ScratchDatabaseRefused when the server does not allow it."""

    def drop_scratch(self, server: DatabaseConnection, name: str) -> None:
        """Drop the scratch database if it exists (``WITH (FORCE)``). Safe to repeat."""

    def scratch_exists(self, server: DatabaseConnection, name: str) -> bool: ...

    def table_rows(self, database: DatabaseConnection) -> dict[str, int]:
        """Exact row counts of every user table, now."""

    def query_is_true(self, database: DatabaseConnection, query: str, timeout_seconds: int = 60) -> bool:
        """Run ``query`` read-only: whether it returned true. Raises DatabaseError (with the server's reason)
        when it fails, writes, or returns anything but one boolean."""


class PostgresDatabases:
    """The real thing: psycopg and the client tools of the server's major (``tools.py``), one module per job:
    ``snapshot.py``, ``dump.py``, ``restore.py``, ``scratch.py``; credentials and errors in ``connection.py``."""

    def __init__(
        self,
        setting: SettingReader,
        *,
        connect_timeout: int,
        bin_dir: str | None,
        token_provider: TokenProvider | None = None,
    ) -> None:
        self._credentials = Credentials(setting, connect_timeout, token_provider)
        self._bin_dir = bin_dir

    def parameters(self, database: DatabaseConnection) -> ConnectionParameters:
        return self._credentials.parameters(database)

    def ping(self, database: DatabaseConnection, timeout: int = 5) -> None:
        parameters = self.parameters(database)
        try:
            with parameters.connect(connect_timeout=timeout) as connection:
                connection.execute("SELECT 1")
        except psycopg.Error as error:
            raise ServiceUnavailable(
                f"Cannot reach database {parameters.describe()}: {first_line(error)}", code="database_unreachable"
            ) from error

    @contextlib.contextmanager
    def snapshot(self, database: DatabaseConnection) -> Iterator[DatabaseSnapshot]:
        parameters = self.parameters(database)
        with ExportedSnapshot(parameters) as exported:
            yield _PostgresSnapshot(exported, self._bin_dir)

    @contextlib.contextmanager
    def referenced_files(self, database: DatabaseConnection, query: str | None) -> Iterator[Iterator[str]]:
        with ExportedSnapshot(self.parameters(database)) as exported:
            yield exported.file_document_uuids(query, default=ALL_FILE_DOCUMENTS_QUERY)

    def restore(
        self,
        database: DatabaseConnection,
        dump: Callable[[], Iterator[bytes]],
        *,
        before_commit: Callable[[int], None] | None = None,
        row_counts: Mapping[str, int] | None = None,
        stop: threading.Event | None = None,
        on_load: Callable[[int, int], None] | None = None,
    ) -> None:
        restore_atomically(
            self.parameters(database),
            dump,
            self._bin_dir,
            before_commit=before_commit,
            row_counts=row_counts,
            stop=stop,
            on_load=on_load,
        )

    def transaction_committed(self, database: DatabaseConnection, transaction: int) -> bool | None:
        return transaction_committed(self.parameters(database), transaction)

    def dump_schemas(self, dump: Iterator[bytes]) -> set[str]:
        return dump_schemas(dump, tool_dir(None, self._bin_dir))

    def dump_info(self, dump: Iterator[bytes]) -> DumpInfo:
        return dump_info(dump, tool_dir(None, self._bin_dir))

    def server_version(self, database: DatabaseConnection) -> int:
        return server_version(self.parameters(database))

    def create_scratch(self, server: DatabaseConnection, name: str) -> DatabaseConnection:
        return create_scratch(self.parameters(server), server, name)

    def drop_scratch(self, server: DatabaseConnection, name: str) -> None:
        drop_scratch(self.parameters(server), name)

    def scratch_exists(self, server: DatabaseConnection, name: str) -> bool:
        return scratch_exists(self.parameters(server), name)

    def table_rows(self, database: DatabaseConnection) -> dict[str, int]:
        return table_rows(self.parameters(database))

    def query_is_true(self, database: DatabaseConnection, query: str, timeout_seconds: int = 60) -> bool:
        return query_is_true(self.parameters(database), query, timeout_seconds)


class _PostgresSnapshot:
    def __init__(self, exported: ExportedSnapshot, bin_dir: str | None) -> None:
        self._exported = exported
        self._bin_dir = bin_dir

    @property
    def server_version(self) -> int:
        return self._exported.server_version

    def database_size(self) -> int:
        return self._exported.database_size()

    def count_file_documents(self, query: str | None = None) -> int:
        return self._exported.count_file_documents(query)

    def file_document_uuids(self, query: str | None = None) -> Iterator[str]:
        return self._exported.file_document_uuids(query)

    def table_rows(self) -> dict[str, int]:
        try:
            return count_rows(self._exported.connection)
        except psycopg.Error as error:
            raise classify(error, self._exported.parameters) from error

    def not_carried(self) -> list[str]:
        return self._exported.not_carried()

    def dump(self, *, compress: bool = True) -> DumpStream:
        bin_dir = tool_dir(self._exported.server_version, self._bin_dir)
        return DumpProcess(self._exported.parameters, self._exported.snapshot_id, bin_dir, compress=compress)
