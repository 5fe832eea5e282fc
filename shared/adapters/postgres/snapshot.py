"""One consistent view of a database: an exported snapshot that pg_dump and our own queries share."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg

from shared.adapters.postgres.connection import ConnectionParameters, classify

# Every file document row, whatever its flags: what a restore must not delete from the file store.
ALL_FILE_DOCUMENTS_QUERY = 'SELECT "__uuid__" FROM "system$filedocument"'

DEFAULT_FILE_DOCUMENT_QUERY = (
    'SELECT "__uuid__" FROM "system$filedocument" WHERE hascontents AND NOT deleteafterdownload'
)

# Each row: something the database has that pg_dump -Fc -O -x, restored without -C, does not carry.
_NOT_CARRIED = """
WITH user_relations AS (
  SELECT c.relowner, c.relacl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%')
SELECT format('database settings (%s%s)', array_to_string(s.setconfig, ', '),
              CASE WHEN s.setrole <> 0 THEN ' for role ' || s.setrole::regrole::text ELSE '' END)
FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = current_database()
UNION ALL
SELECT 'the database''s comment' FROM pg_database d
WHERE d.datname = current_database() AND shobj_description(d.oid, 'pg_database') IS NOT NULL
UNION ALL
SELECT format('extension %s at version %s (a restore installs the server''s default, %s)',
              e.extname, e.extversion, a.default_version)
FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
WHERE e.extversion IS DISTINCT FROM a.default_version
UNION ALL
SELECT format('owners: %s tables, views or sequences belong to roles other than %s (a restore makes %s their owner)',
              count(*), current_user, current_user)
FROM user_relations WHERE relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user) HAVING count(*) > 0
UNION ALL
SELECT format('privileges granted on %s tables, views or sequences (a restore grants none)', count(*))
FROM user_relations WHERE relacl IS NOT NULL HAVING count(*) > 0
"""


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

    def not_carried(self) -> list[str]:
        """What this database has that its dump (``pg_dump -Fc -O -x``, restored without ``-C``) does not carry."""
        try:
            return [str(row[0]) for row in self.connection.execute(_NOT_CARRIED).fetchall()]
        except psycopg.Error as error:
            raise classify(error, self.parameters) from error

    def _has_file_document_table(self) -> bool:
        try:
            row = self.connection.execute(
                """SELECT to_regclass('public."system$filedocument"') IS NOT NULL"""
            ).fetchone()
        except psycopg.Error as error:
            raise classify(error, self.parameters) from error
        return bool(row and row[0])
