"""Connecting to an environment's database: parameters (never storing a password), and what a driver
error means for the work (may a retry help?)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from shared.domain.environments import DatabaseConnection
from shared.errors import ServiceUnavailable
from shared.faults import Fault

ENTRA_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"

TokenProvider = Callable[[str], str]
SettingReader = Callable[[str], str | None]


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


class Credentials:
    """Turns an environment's database registration into connection parameters: the password from the
    app setting it names (a Key Vault reference in Azure), or a Microsoft Entra token of the identity."""

    def __init__(self, setting: SettingReader, connect_timeout: int, token_provider: TokenProvider | None) -> None:
        self._setting = setting
        self._connect_timeout = connect_timeout
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
            password = self._setting(database.password_setting)
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
            connect_timeout=self._connect_timeout,
        )


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
