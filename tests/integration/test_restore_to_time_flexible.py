"""A restore to a point in time of an environment on an Azure Database for PostgreSQL flexible server, through
the real use case, Azurite and PostgreSQL, with only Azure's management API faked (tests/support/
flexible_servers.py). The fake's restored server is the local PostgreSQL, holding the database as the fake
was asked to restore it: the ticks committed by the instant it was given. The target ends with exactly those,
the backup of the past is kept, and no temporary server is left."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from shared.adapters.pointintime.flexible import FlexibleServerPointInTime
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import SYSTEM, Principal
from shared.domain.backups import BackupStatus, Tier
from shared.domain.operations import OperationStatus
from tests.support.appdata import create_scratch_app
from tests.support.flexible_servers import FakeFlexibleServers, FakeServer
from tests.support.restoring import Harness
from tools.seed_demo import SCHEMA

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")
START = datetime.now(UTC) - timedelta(days=1)
TICKS = [START + timedelta(hours=number) for number in range(1, 11)]  # tick n committed at TICKS[n - 1]


def test_a_flexible_servers_past_is_restored_from_a_temporary_server_that_is_then_deleted(
    storage_services, storage_connection_string, database_factory, postgres_admin_dsn
):
    fake = FakeFlexibleServers()
    fake.restored_host = "127.0.0.1"  # the temporary server: the local PostgreSQL
    copy = database_factory()  # the source's database, as the temporary server will hold it
    source_id = fake.add_server("rg-apps", "prod-pg", earliest_restore=START, databases=(copy,))

    def restored(server: FakeServer) -> None:
        assert server.point_in_time_utc is not None
        dsn = psycopg.conninfo.make_conninfo(postgres_admin_dsn, dbname=copy)
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(SCHEMA)
            connection.execute("CREATE TABLE ticks (id integer PRIMARY KEY, at timestamptz NOT NULL)")
            for number, at in enumerate(TICKS, start=1):
                if at <= server.point_in_time_utc:
                    connection.execute("INSERT INTO ticks VALUES (%s, %s)", (number, at))

    fake.on_restored = restored
    source = FlexibleServerPointInTime({"prod": source_id}, lambda subscription: fake, poll=0)
    harness = Harness(storage_connection_string, point_in_time=source, PROD_DB_PASSWORD="the admin's password")
    services = harness.services
    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    body = EnvironmentBody.model_validate(
        {
            "namespace": namespace,
            "appName": "flex",
            "displayName": "On a flexible server",
            "state": "Running",
            "database": {
                "host": "prod-pg.invalid",  # the live server is never read: only its restored copy is
                "port": 5432,
                "database": copy,
                "user": "postgres",
                "passwordSetting": "PROD_DB_PASSWORD",
            },
            "files": {"container": f"files-{uuid.uuid4().hex[:8]}", "prefix": "docs/"},
            "modelVersion": "1.0.0",
            "pointInTime": {"server": "prod"},
        }
    )
    source_env = f"flex-{uuid.uuid4().hex[:8]}"
    services.environments.put(source_env, body.to_registration(), SYSTEM)
    target = create_scratch_app(
        services, database_factory(), postgres_admin_dsn, namespace=namespace, state="Stopped", documents=2
    )

    window = services.past.window(source_env).window
    assert window.earliest == START
    instant = TICKS[4] + timedelta(minutes=30)  # after tick 5, before tick 6
    operation = services.restores.request_to_time(source_env, instant, target.environment_id, ADA)
    harness.drain()

    done = services.restores.get(operation.id)
    assert done.status is OperationStatus.FINISHED, done.error
    with target.connect() as connection:
        assert {row[0] for row in connection.execute("SELECT id FROM ticks")} == {1, 2, 3, 4, 5}
    past = services.backup_catalog.get(source_env, str(done.backup_id))
    assert (past.status, past.tier, past.point_in_time) == (BackupStatus.FINISHED, Tier.POINT_IN_TIME, instant)
    [request] = fake.restore_requests
    assert (request.create_mode, request.point_in_time_utc) == ("PointInTimeRestore", instant)
    assert fake.temporary() == []  # deleted once the dump was stored
    assert [server.name for server in fake.existing()] == ["prod-pg"]
