"""The in-memory twin of the PostgreSQL seam, for unit tests of the core: databases as tables of rows,
a dump as their serialised copy, a restore that replaces them all at once or not at all. Held to the
real thing by tests/integration/test_databases_contract.py."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared.adapters.postgres.connection import DatabaseError
from shared.adapters.postgres.dump import DumpInfo
from shared.adapters.postgres.restore import RestoreCheckFailed, RestoreStopped
from shared.adapters.postgres.scratch import SCRATCH_PREFIX, ScratchDatabaseRefused
from shared.adapters.postgres.snapshot import ALL_FILE_DOCUMENTS_QUERY
from shared.domain.environments import DatabaseConnection
from shared.errors import ServiceUnavailable
from shared.faults import Fault

MAGIC = b"PGDMP"  # what a custom-format dump begins with, so the upload checks treat it as one
_HEADER = MAGIC + b" appbackups-memory\n"
FILE_DOCUMENTS = 'public."system$filedocument"'


def address(connection: DatabaseConnection) -> str:
    return f"{connection.user}@{connection.host}:{connection.port}/{connection.database}"


@dataclass
class Table:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class MemoryDatabase:
    """Tables by qualified name (as ``schema."table"``), rows as tuples of JSON-able values."""

    tables: dict[str, Table] = field(default_factory=dict)
    server_version: int = 150000
    not_carried: list[str] = field(default_factory=list)  # what its dump would not carry, as the real one says

    def contents(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's rows, sorted: equal means the same data (as tests.support.appdata.table_contents)."""
        return {name: sorted(table.rows, key=repr) for name, table in sorted(self.tables.items())}

    def file_documents(self, query: str | None) -> list[str]:
        table = self.tables.get(FILE_DOCUMENTS)
        if table is None:
            if query is not None:
                raise DatabaseError("a table the query needs does not exist", transient=False)
            return []
        position = {name: index for index, name in enumerate(table.columns)}
        if query not in (None, ALL_FILE_DOCUMENTS_QUERY):
            raise DatabaseError("the in-memory database runs only the built-in file-document queries", transient=False)
        selected = set()
        for row in table.rows:
            if query is None and not (row[position["hascontents"]] and not row[position["deleteafterdownload"]]):
                continue
            if row[position["__uuid__"]] is not None:
                selected.add(str(row[position["__uuid__"]]))
        return sorted(selected, key=lambda uuid: uuid.encode())

    def table_rows(self) -> dict[str, int]:
        return {name: len(table.rows) for name, table in sorted(self.tables.items())}

    def serialised(self) -> bytes:
        document = {
            name: {"columns": list(t.columns), "rows": [list(r) for r in t.rows]} for name, t in self.tables.items()
        }
        schemas = sorted({name.split(".", 1)[0] for name in self.tables} - {"public"})
        header = {"schemas": schemas, "serverVersion": self.server_version}
        return _HEADER + json.dumps({**header, "tables": document}).encode()


def _parse(dump: bytes) -> dict[str, Table]:
    if not dump.startswith(_HEADER):
        raise DatabaseError("The dump is not a readable pg_dump custom-format archive.", transient=False)
    try:
        document = json.loads(dump[len(_HEADER) :])
    except ValueError as error:
        raise DatabaseError(f"The dump is damaged: {error}", transient=False) from error
    return {
        name: Table(tuple(table["columns"]), [tuple(row) for row in table["rows"]])
        for name, table in document["tables"].items()
    }


class _Dump:
    def __init__(self, content: bytes) -> None:
        self._content = content
        self.cancelled = False

    def chunks(self, size: int) -> Iterator[bytes]:
        for start in range(0, len(self._content), size):
            if self.cancelled:
                return
            yield self._content[start : start + size]

    def wait(self) -> None:
        return None

    def cancel(self) -> None:
        self.cancelled = True


class _Snapshot:
    def __init__(self, database: MemoryDatabase) -> None:
        self._copy = MemoryDatabase(
            {name: Table(t.columns, list(t.rows)) for name, t in database.tables.items()},
            database.server_version,
            list(database.not_carried),
        )

    @property
    def server_version(self) -> int:
        return self._copy.server_version

    def database_size(self) -> int:
        return 8192 + len(self._copy.serialised())

    def count_file_documents(self, query: str | None = None) -> int:
        return len(self._copy.file_documents(query))

    def file_document_uuids(self, query: str | None = None) -> Iterator[str]:
        return iter(self._copy.file_documents(query))

    def table_rows(self) -> dict[str, int]:
        return self._copy.table_rows()

    def not_carried(self) -> list[str]:
        return list(self._copy.not_carried)

    def dump(self, *, compress: bool = True) -> _Dump:
        return _Dump(self._copy.serialised())


class MemoryDatabases:
    """Several databases, found by the address an environment's registration gives."""

    def __init__(self) -> None:
        self.refuse_create: set[str] = set()  # hosts whose user may not CREATE DATABASE
        self._databases: dict[str, MemoryDatabase] = {}
        self._transactions: dict[int, bool | None] = {}
        self._next_transaction = itertools.count(1000)
        self._lock = threading.Lock()

    def create(
        self, connection: DatabaseConnection, tables: dict[str, Table] | None = None, server_version: int = 150000
    ) -> MemoryDatabase:
        database = MemoryDatabase(dict(tables or {}), server_version)
        self._databases[address(connection)] = database
        return database

    def database(self, connection: DatabaseConnection) -> MemoryDatabase:
        database = self._databases.get(address(connection))
        if database is None:
            raise DatabaseError(f"Database {address(connection)}: the database does not exist.", transient=False)
        return database

    def ping(self, database: DatabaseConnection, timeout: int = 5) -> None:
        if address(database) not in self._databases:
            raise ServiceUnavailable(
                f"Cannot reach database {address(database)}: the database does not exist", code="database_unreachable"
            )

    @contextlib.contextmanager
    def snapshot(self, database: DatabaseConnection) -> Iterator[_Snapshot]:
        with self._lock:
            view = _Snapshot(self.database(database))
        yield view

    @contextlib.contextmanager
    def referenced_files(self, database: DatabaseConnection, query: str | None) -> Iterator[Iterator[str]]:
        with self._lock:
            uuids = self.database(database).file_documents(query or ALL_FILE_DOCUMENTS_QUERY)
        yield iter(uuids)

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
        target = self.database(database)
        transaction = next(self._next_transaction)
        self._transactions[transaction] = None
        try:
            try:
                content = b"".join(dump())
            except Exception as error:  # as the real adapter: worth a retry unless the error says it is not
                raise DatabaseError(
                    f"Restoring into {address(database)} failed and was rolled back: reading the dump failed: "
                    f"{type(error).__name__}: {error}",
                    transient=error.transient if isinstance(error, Fault) else True,
                ) from error
            tables = _parse(content)
            for done in range(len(tables) + 1):
                if stop is not None and stop.is_set():
                    raise RestoreStopped("The restore was stopped before its COMMIT and rolled back.", transient=True)
                if on_load is not None:
                    on_load(done, len(tables))
            problems = [
                f"{name}: {len(tables[name].rows) if name in tables else 'no table'} rows loaded, {rows} recorded"
                for name, rows in sorted((row_counts or {}).items())
                if name not in tables or len(tables[name].rows) != rows
            ]
            if problems:
                raise RestoreCheckFailed(
                    f"Restoring into {address(database)} was rolled back before its COMMIT: the loaded database does "
                    f"not hold what the backup holds ({'; '.join(problems)}).",
                    transient=False,
                )
            if before_commit is not None:
                before_commit(transaction)
        except BaseException:
            self._transactions[transaction] = False
            raise
        with self._lock:
            target.tables = tables
            self._transactions[transaction] = True

    def transaction_committed(self, database: DatabaseConnection, transaction: int) -> bool | None:
        return self._transactions.get(transaction)

    def dump_schemas(self, dump: Iterator[bytes]) -> set[str]:
        """The schemas the dump creates: those of its tables but public, which every database has."""
        content = b"".join(dump)
        _parse(content)
        return set(json.loads(content[len(_HEADER) :])["schemas"])

    def dump_info(self, dump: Iterator[bytes]) -> DumpInfo:
        content = b"".join(dump)
        _parse(content)
        header = json.loads(content[len(_HEADER) :])
        version = int(header.get("serverVersion") or 0)
        return DumpInfo(version, f"{version // 10000}.{version % 10000}", "memory", frozenset(header["schemas"]))

    def server_version(self, database: DatabaseConnection) -> int:
        return self.database(database).server_version

    def create_scratch(self, server: DatabaseConnection, name: str) -> DatabaseConnection:
        if not name.startswith(SCRATCH_PREFIX):
            raise ValueError(f"{name!r} is not the name of a drill's scratch database")
        version = self.database(server).server_version
        if server.host in self.refuse_create:
            raise ScratchDatabaseRefused(
                f"The server {server.host}:{server.port} refused to create the scratch database {name} for user "
                f"{server.user}: permission denied to create database",
                transient=False,
            )
        scratch = replace(server, database=name)
        with self._lock:
            if address(scratch) not in self._databases:
                self._databases[address(scratch)] = MemoryDatabase({}, version)
        return scratch

    def drop_scratch(self, server: DatabaseConnection, name: str) -> None:
        if not name.startswith(SCRATCH_PREFIX):
            raise ValueError(f"{name!r} is not the name of a drill's scratch database")
        with self._lock:
            self._databases.pop(address(replace(server, database=name)), None)

    def scratch_exists(self, server: DatabaseConnection, name: str) -> bool:
        return address(replace(server, database=name)) in self._databases

    def table_rows(self, database: DatabaseConnection) -> dict[str, int]:
        with self._lock:
            return self.database(database).table_rows()

    def query_is_true(self, database: DatabaseConnection, query: str, timeout_seconds: int = 60) -> bool:
        """The twin understands ``SELECT true``, ``SELECT false`` and ``SELECT count(*) <op> N FROM <table>``."""
        target = self.database(database)
        text = " ".join(query.split()).rstrip(";")
        if text.lower() in ("select true", "select false"):
            return text.lower() == "select true"
        match = _COUNT_QUERY.match(text)
        if match is None:
            raise DatabaseError(f"The query failed: the in-memory database does not run {query!r}", transient=False)
        table = target.tables.get(match["table"]) or target.tables.get(f"public.{match['table']}")
        if table is None:
            raise DatabaseError(f'The query failed: relation "{match["table"]}" does not exist', transient=False)
        count, limit = len(table.rows), int(match["number"])
        return {"=": count == limit, ">": count > limit, ">=": count >= limit, "<": count < limit}[match["op"]]


_COUNT_QUERY = re.compile(r"^select count\(\*\) (?P<op>>=|=|>|<) (?P<number>\d+) from (?P<table>\S+)$", re.IGNORECASE)
