"""Provisioning, demo seeding and the health check against real Azurite and PostgreSQL."""

import uuid

import psycopg
import pytest

from shared.bootstrap import build_services
from shared.config import STORAGE_CONNECTION, Settings
from shared.domain.environments import EnvironmentState
from tools import azurite as azurite_launcher
from tools.provision import provision
from tools.seed_demo import DEMO_ENVIRONMENTS, DEMO_FILES_CONTAINER, database_name, drop, seed

pytestmark = pytest.mark.integration


@pytest.fixture
def private_storage(tmp_path):
    instance = azurite_launcher.start(tmp_path / "azurite")
    yield instance
    instance.stop()


@pytest.fixture
def demo_prefix(postgres_admin_dsn):
    prefix = f"appbackups_test_demo_{uuid.uuid4().hex[:8]}"
    yield prefix
    drop(postgres_admin_dsn, prefix)


def test_seed_creates_the_demo_namespace_once(private_storage, postgres_admin_dsn, demo_prefix):
    services = build_services(Settings.from_environ({STORAGE_CONNECTION: private_storage.connection_string}))
    provision(services.clients)
    assert seed(services, admin_dsn=postgres_admin_dsn, database_prefix=demo_prefix) == [
        "demo-production",
        "demo-acceptance",
    ]
    production = services.environments.get("demo-production")
    acceptance = services.environments.get("demo-acceptance")
    assert (production.namespace, production.state) == ("demo", EnvironmentState.RUNNING)
    assert (acceptance.namespace, acceptance.state) == ("demo", EnvironmentState.STOPPED)
    assert production.database.password_setting is None

    dsn = psycopg.conninfo.make_conninfo(postgres_admin_dsn, dbname=production.database.database)
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            'SELECT "__uuid__", hascontents, deleteafterdownload, size FROM "system$filedocument" ORDER BY id'
        ).fetchall()
        customers = connection.execute('SELECT count(*) FROM "sales$customer"').fetchone()[0]
    assert customers == 25
    container = services.clients.blob_service.get_container_client(DEMO_FILES_CONTAINER)
    blobs = {blob.name: blob.size for blob in container.list_blobs(name_starts_with="demo-production/")}
    for file_uuid, has_contents, _, size in rows:
        name = f"demo-production/{file_uuid}"
        assert (name in blobs) == has_contents
        if has_contents:
            assert blobs[name] == size
    assert len(blobs) == sum(1 for row in rows if row[1]) + 1  # plus one orphan nobody refers to

    # A second run changes nothing and does not fail.
    etag = production.etag
    seed(services, admin_dsn=postgres_admin_dsn, database_prefix=demo_prefix)
    assert services.environments.get("demo-production").etag == etag

    report = services.health.check()
    assert report.status == "healthy"
    assert {check.name for check in report.databases} == {"demo-production", "demo-acceptance"}
    assert production.database.database == database_name(demo_prefix, DEMO_ENVIRONMENTS[0])


def test_health_reports_an_unreachable_database_as_degraded(storage_services):
    from shared.contracts.environments import EnvironmentBody
    from shared.domain.access import SYSTEM

    body = EnvironmentBody.model_validate(
        {
            "namespace": "health",
            "appName": "app",
            "displayName": "Broken",
            "database": {"host": "127.0.0.1", "port": 1, "database": "nowhere", "user": "postgres"},
            "files": {"container": "files"},
        }
    )
    environment_id = f"broken-{uuid.uuid4().hex[:8]}"
    storage_services.environments.put(environment_id, body.to_registration(), SYSTEM)
    report = storage_services.health.check()
    assert report.status == "degraded"
    failed = {check.name: check.detail for check in report.databases if check.status == "failed"}
    assert environment_id in failed
    assert "127.0.0.1:1/nowhere" in failed[environment_id]


def test_health_reports_unreachable_storage_as_unhealthy():
    from tools.azurite import connection_string

    services = build_services(Settings.from_environ({STORAGE_CONNECTION: connection_string(9, 9, 9)}))
    report = services.health.check()
    assert report.status == "unhealthy"
    assert {check.status for check in report.storage} == {"failed"}
