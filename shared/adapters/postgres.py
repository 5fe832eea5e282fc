"""PostgreSQL: connection parameters for an environment's database, without ever storing a password."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from shared.config import Settings
from shared.domain.environments import DatabaseConnection
from shared.errors import ServiceUnavailable

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
