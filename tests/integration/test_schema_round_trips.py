"""Real schemas round-trip through the use cases: backup → restore → equal, twice; both backups drill Passed;
the database-only download restores by hand. And a dump made of a database the old reset restored restores."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import requests

from shared.adapters.postgres import PostgresDatabases
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus
from shared.domain.downloads import DataType
from shared.domain.environments import DatabaseConnection
from shared.domain.operations import OperationStatus
from shared.domain.verification import VerificationStatus
from tests.support.appdata import ScratchApp, create_scratch_app
from tests.support.fingerprints import Fingerprint, fingerprint
from tests.support.restoring import Harness
from tests.support.schemas import (
    EVERYTHING,
    PUBLIC_RECREATED,
    PUBLIC_REOWNED,
    TYPES_AND_CODE,
    SchemaFixture,
    app_with_schema,
)
from tools.seed_demo import SCHEMA as MENDIX_SCHEMA

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")


@pytest.fixture
def harness(storage_services: object, storage_connection_string: str) -> Harness:
    return Harness(storage_connection_string)


def assert_same(expected: Fingerprint, actual: Fingerprint, where: str) -> None:
    differences = expected.differences(actual)
    assert not differences, f"{where}:\n" + "\n".join(differences)


def backup(harness: Harness, app: ScratchApp) -> str:
    backup_id = harness.backup(app.environment_id, ADA)
    backup = harness.services.backup_catalog.get(app.environment_id, backup_id)
    assert backup.status is BackupStatus.FINISHED, backup.status_message
    return backup_id


def restore(harness: Harness, source: ScratchApp, backup_id: str, target: ScratchApp) -> None:
    operation = harness.services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    harness.drain()
    done = harness.services.restores.get(operation.id)
    assert done.status is OperationStatus.FINISHED, done.error


def drill(harness: Harness, app: ScratchApp, backup_id: str) -> None:
    operation = harness.services.drills.request(app.environment_id, backup_id, ADA)
    harness.drain()
    done = harness.services.drills.get(operation.id)
    verification = harness.services.backup_catalog.get(app.environment_id, backup_id).verification
    assert done.status is OperationStatus.FINISHED, done.error
    assert verification.status is VerificationStatus.PASSED, [
        (check.name, check.status, check.detail) for check in verification.checks
    ]


def database_only_download(harness: Harness, app: ScratchApp, backup_id: str) -> bytes:
    services = harness.services
    services.downloads.request(app.environment_id, backup_id, DataType.DATABASE_ONLY, ADA)
    harness.drain()
    ready = services.downloads.status(app.environment_id, backup_id, DataType.DATABASE_ONLY)
    assert ready.status == "Ready", ready.operation.error
    return requests.get(ready.url, timeout=60).content


def dsn_of(admin_dsn: str, database: str) -> str:
    return psycopg.conninfo.make_conninfo(admin_dsn, dbname=database)


def pg_restore_by_hand(dump: Path, database: str) -> None:
    """The documented manual procedure: ``pg_restore -O -x`` into an empty database."""
    done = subprocess.run(
        ["pg_restore", "-O", "-x", "--exit-on-error", "-h", "127.0.0.1", "-U", "postgres", "-d", database, str(dump)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("schema", [EVERYTHING, PUBLIC_RECREATED, PUBLIC_REOWNED], ids=str)
def test_a_schema_round_trips_twice_drills_and_restores_by_hand(
    harness: Harness,
    schema: SchemaFixture,
    database_factory: Callable[[], str],
    postgres_admin_dsn: str,
    tmp_path: Path,
) -> None:
    services = harness.services
    source = app_with_schema(services, database_factory, postgres_admin_dsn, schema, documents=2, customers=3)
    target = create_scratch_app(
        services, database_factory(), postgres_admin_dsn, namespace=source.namespace, state="Stopped", documents=1
    )
    original = fingerprint(source.dsn)

    first = backup(harness, source)
    restore(harness, source, first, target)
    assert_same(original, fingerprint(target.dsn), "the source's backup restored into the target")
    assert target.stored_files() == source.referenced_files()

    second = backup(harness, target)  # a backup of a restored database
    services.environments.stop(source.environment_id, ADA)
    restore(harness, target, second, source)
    assert_same(original, fingerprint(source.dsn), "the restored target's backup restored back into the source")

    drill(harness, source, first)
    drill(harness, target, second)

    dump = tmp_path / "db.backup"
    dump.write_bytes(database_only_download(harness, target, second))
    by_hand = database_factory()
    pg_restore_by_hand(dump, by_hand)
    assert_same(original, fingerprint(dsn_of(postgres_admin_dsn, by_hand)), "the download restored by hand")


def test_an_unlogged_tables_rows_come_back(database_factory: Callable[[], str], postgres_admin_dsn: str) -> None:
    """pg_dump carries an unlogged table's rows unless told --no-unlogged-table-data, which ours is not."""
    source, target = database_factory(), database_factory()
    with psycopg.connect(dsn_of(postgres_admin_dsn, source), autocommit=True) as connection:
        connection.execute("CREATE UNLOGGED TABLE cache (key int PRIMARY KEY, value text)")
        connection.execute("INSERT INTO cache SELECT n, 'value ' || n FROM generate_series(1, 25) n")
    databases = PostgresDatabases(lambda name: None, connect_timeout=5, bin_dir=None)
    with databases.snapshot(connection_to(source)) as snapshot:
        stream = snapshot.dump()
        dump = b"".join(stream.chunks(65536))
        stream.wait()
    databases.restore(connection_to(target), lambda: iter([dump]))
    with psycopg.connect(dsn_of(postgres_admin_dsn, target)) as connection:
        persistence, rows = connection.execute(
            "SELECT relpersistence, (SELECT count(*) FROM cache) FROM pg_class WHERE oid = 'cache'::regclass"
        ).fetchone()
    assert (persistence, rows) == ("u", 25)


def test_a_dump_the_old_reset_made_restores(database_factory: Callable[[], str], postgres_admin_dsn: str) -> None:
    """Before the fix a restore re-created `public` as an ordinary schema; pg_dump then lists `SCHEMA - public`
    without creating it. Such a dump, as every backup of a restored database made by that code, restores."""
    source = database_factory()
    with psycopg.connect(dsn_of(postgres_admin_dsn, source), autocommit=True) as connection:
        connection.execute(TYPES_AND_CODE.sql)
        connection.execute(MENDIX_SCHEMA)
        connection.execute("INSERT INTO \"sales$customer\" (id, name) SELECT n, 'c' || n FROM generate_series(1, 9) n")
    fresh_dump = pg_dump(source)

    # What the old restore did: its reset, then pg_restore -O -x piped into psql.
    old_restored = database_factory()
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", old_restored, "-q", "-v", "ON_ERROR_STOP=1"]
    subprocess.run([*psql, "-c", "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"], check=True, capture_output=True)
    script = subprocess.run(["pg_restore", "-O", "-x", "-f", "-"], input=fresh_dump, capture_output=True, check=True)
    subprocess.run(psql, input=script.stdout, check=True, capture_output=True)
    old_dump = pg_dump(old_restored)
    listing = subprocess.run(["pg_restore", "--list"], input=old_dump, capture_output=True, check=True).stdout
    assert b"SCHEMA - public" in listing  # the entry that made the old restore fail
    assert (
        b"CREATE SCHEMA public"
        not in subprocess.run(["pg_restore", "-f", "-"], input=old_dump, capture_output=True, check=True).stdout
    )

    target = database_factory()
    with psycopg.connect(dsn_of(postgres_admin_dsn, target), autocommit=True) as connection:
        connection.execute("CREATE TABLE leftover (id int)")
    databases = PostgresDatabases(lambda name: None, connect_timeout=5, bin_dir=None)
    databases.restore(connection_to(target), lambda: iter([old_dump]))
    restored = fingerprint(dsn_of(postgres_admin_dsn, target))
    assert_same(fingerprint(dsn_of(postgres_admin_dsn, old_restored)), restored, "the old code's dump restored")
    assert restored.tables == fingerprint(dsn_of(postgres_admin_dsn, source)).tables


def pg_dump(database: str) -> bytes:
    return subprocess.run(
        ["pg_dump", "-Fc", "-O", "-x", "-h", "127.0.0.1", "-U", "postgres", database], capture_output=True, check=True
    ).stdout


def connection_to(database: str) -> DatabaseConnection:
    return DatabaseConnection(host="127.0.0.1", port=5432, database=database, user="postgres")
