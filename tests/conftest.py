"""Fixtures shared by every test layer: a private Azurite and scratch PostgreSQL databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.bootstrap import Services
from tools import azurite as azurite_launcher


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[azurite_launcher.Azurite]:
    """A private Azurite on free ports, stopped when the session ends."""
    data_dir: Path = tmp_path_factory.mktemp("azurite")
    instance = azurite_launcher.start(data_dir, log_file=data_dir / "azurite.log")
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def storage_connection_string(azurite: azurite_launcher.Azurite) -> str:
    return azurite.connection_string


ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@pytest.fixture(scope="session")
def postgres_admin_dsn() -> str:
    """The local PostgreSQL (trust auth). Tests fail, not skip, when it is missing."""
    import psycopg

    try:
        psycopg.connect(ADMIN_DSN, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_DSN}: {error}")
    return ADMIN_DSN


@pytest.fixture
def database_factory(postgres_admin_dsn: str) -> Iterator[Callable[[], str]]:
    """Creates uniquely named scratch databases and drops them afterwards."""
    import psycopg
    from psycopg import sql

    created: list[str] = []

    def create() -> str:
        name = f"appbackups_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(postgres_admin_dsn, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return name

    yield create
    with psycopg.connect(postgres_admin_dsn, autocommit=True) as connection:
        for name in created:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def storage_services(storage_connection_string: str) -> Services:
    """Services on the session's Azurite, with the containers, tables and queues provisioned."""
    from shared.bootstrap import build_services
    from shared.config import STORAGE_CONNECTION, Settings
    from tools.provision import provision

    settings = Settings.from_environ(
        {STORAGE_CONNECTION: storage_connection_string, "APPBACKUPS_DEVELOPMENT_MODE": "true"}
    )
    services = build_services(settings)
    provision(services.clients)
    return services
