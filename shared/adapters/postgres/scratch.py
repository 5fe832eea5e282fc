"""What a restore drill needs of a server: a scratch database next to an environment's (created, then
dropped whatever happened), exact row counts per table, and read-only boolean assertions."""

from __future__ import annotations

from dataclasses import replace

import psycopg
from psycopg import sql

from shared.adapters.postgres.connection import ConnectionParameters, DatabaseError, classify, first_line
from shared.domain.environments import DatabaseConnection

# A drill's scratch databases, and only those, are ever created or dropped by the service.
SCRATCH_PREFIX = "appbackups_verify_"

# Ordinary tables (and partitions) outside the system schemas, as schema."table" (quote_ident rules).
_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname), n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
ORDER BY 1
"""


class ScratchDatabaseRefused(DatabaseError):
    """The server does not let the service create a database (no CREATEDB privilege, say)."""


def _check_name(name: str) -> None:
    if not name.startswith(SCRATCH_PREFIX) or not name.replace("_", "").isalnum() or len(name) > 63:
        raise ValueError(f"{name!r} is not the name of a drill's scratch database")


def create_scratch(parameters: ConnectionParameters, server: DatabaseConnection, name: str) -> DatabaseConnection:
    """Create (or find, from an earlier attempt) the scratch database ``name`` on ``server``'s server;
    returns the connection to it. Raises ScratchDatabaseRefused when the server refuses."""
    _check_name(name)
    try:
        with parameters.connect(autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                connection.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateDatabase:
        pass  # created meanwhile by an earlier attempt of the same drill
    except psycopg.errors.InsufficientPrivilege as error:
        raise ScratchDatabaseRefused(
            f"The server {parameters.host}:{parameters.port} refused to create the scratch database {name} for "
            f"user {parameters.user}: {first_line(error)}",
            transient=False,
        ) from error
    except psycopg.Error as error:
        raise classify(error, parameters) from error
    return replace(server, database=name)


def drop_scratch(parameters: ConnectionParameters, name: str) -> None:
    """Drop the scratch database if it exists, ending whatever is connected to it. Safe to repeat."""
    _check_name(name)
    try:
        with parameters.connect(autocommit=True) as connection:
            if int(connection.info.server_version) >= 130000:
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                return
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        raise classify(error, parameters) from error


def scratch_exists(parameters: ConnectionParameters, name: str) -> bool:
    try:
        with parameters.connect(autocommit=True) as connection:
            return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
    except psycopg.Error as error:
        raise classify(error, parameters) from error


def count_rows(connection: psycopg.Connection) -> dict[str, int]:
    """Exact row counts of every user table, in the connection's current transaction (its backup)."""
    tables = [(str(row[0]), str(row[1]), str(row[2])) for row in connection.execute(_TABLES)]
    counts = {}
    for name, schema, relation in tables:
        row = connection.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(relation))
        ).fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts


def table_rows(parameters: ConnectionParameters) -> dict[str, int]:
    try:
        with parameters.connect() as connection:
            connection.read_only = True
            return count_rows(connection)
    except psycopg.Error as error:
        raise classify(error, parameters) from error


def query_is_true(parameters: ConnectionParameters, query: str, timeout_seconds: int) -> bool:
    """Run ``query`` in a READ ONLY transaction (with a statement timeout): True only when it returns one
    row whose first column is true. A query that fails, writes, or returns something else raises
    DatabaseError with the server's reason."""
    try:
        with parameters.connect() as connection:
            connection.read_only = True
            connection.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{timeout_seconds}s")))
            rows = connection.execute(query.encode()).fetchmany(2)
            connection.rollback()
    except psycopg.Error as error:
        raise DatabaseError(f"The query failed: {first_line(error)}", transient=False) from error
    if len(rows) != 1 or not rows[0]:
        raise DatabaseError(f"The query returned {len(rows)} rows, not one.", transient=False)
    value = rows[0][0]
    if not isinstance(value, bool):
        raise DatabaseError(f"The query returned {value!r}, not true or false.", transient=False)
    return value
