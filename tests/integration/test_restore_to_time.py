"""A restore to a point in time through the real thing: a private cluster archiving its WAL to Azurite with
barman-cloud (tests/support/archiving.py), its file documents captured as the capture timer does, and three
random instants of the window restored into another environment on the shared PostgreSQL. The target holds
exactly the ticks committed by the instant, and exactly the file documents the database referred to then (by
MD5); no temporary instance is left."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import psycopg
import pytest
from azure.storage.blob import BlobServiceClient

from shared.contracts.environments import EnvironmentBody
from shared.domain.access import SYSTEM, Principal
from shared.domain.backups import BackupStatus, Tier
from shared.domain.operations import OperationStatus
from tests.support.appdata import ScratchApp, create_scratch_app, md5_hex
from tests.support.archiving import ArchivedCluster, archived_cluster, processes_in
from tests.support.restoring import Harness
from tools.seed_demo import SCHEMA

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")
TICKS = 24
INTERVAL = 0.5  # seconds between ticks
ADDED_AT = (4, 10, 16)  # a file document added after these ticks…
REMOVED_AT = {13: 0, 19: 1}  # …and, after these ticks, one removed (the first added, the second added)


@dataclass(frozen=True)
class Change:
    """Something committed between ``before`` and ``after``: from ``after`` on, the ticks and file documents."""

    before: datetime
    after: datetime
    ticks: frozenset[int]
    files: dict[str, str]  # uuid -> MD5


@pytest.fixture
def archived(storage_connection_string: str) -> Iterator[ArchivedCluster]:
    container = f"pitr-{uuid.uuid4().hex[:12]}"
    service = BlobServiceClient.from_connection_string(storage_connection_string)
    service.create_container(container)
    try:
        with archived_cluster(storage_connection_string, container) as cluster:
            yield cluster
    finally:
        service.delete_container(container)


def now(connection: psycopg.Connection) -> datetime:
    row = connection.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]


def source_app(harness: Harness, cluster: ArchivedCluster, namespace: str) -> ScratchApp:
    """An environment whose database is on the archived cluster, with point-in-time recovery."""
    with cluster.connect() as connection:
        connection.execute("CREATE DATABASE app")
    with cluster.connect("app") as connection:
        connection.execute(SCHEMA)
        connection.execute("CREATE TABLE ticks (id integer PRIMARY KEY, at timestamptz NOT NULL)")
    services = harness.services
    suffix = uuid.uuid4().hex[:8]
    container = services.clients.blob_service.get_container_client(f"files-{suffix}")
    container.create_container()
    body = EnvironmentBody.model_validate(
        {
            "namespace": namespace,
            "appName": "pitr",
            "displayName": f"Archived {suffix}",
            "state": "Running",
            "database": {"host": str(cluster.directory), "port": cluster.port, "database": "app", "user": "postgres"},
            "files": {"container": container.container_name, "prefix": "docs/"},
            "modelVersion": "1.0.0",
            "pointInTime": {"server": cluster.server},
        }
    )
    environment_id = f"pitr-{suffix}"
    services.environments.put(environment_id, body.to_registration(), SYSTEM)
    dsn = psycopg.conninfo.make_conninfo(host=str(cluster.directory), port=cluster.port, user="postgres", dbname="app")
    return ScratchApp(services, environment_id, namespace, dsn, container, "docs/")


def history(harness: Harness, cluster: ArchivedCluster, app: ScratchApp) -> list[Change]:
    """Ticks every half second; file documents added and removed among them, each change captured at once
    (as the capture timer would within its minute)."""
    capture = harness.services.captures.capture
    cluster.base_backup()
    changes: list[Change] = []
    files: dict[str, str] = {}
    added: list[str] = []
    ticks: set[int] = set()
    with app.connect() as connection:
        for number in range(1, TICKS + 1):
            before = now(connection)
            connection.execute("INSERT INTO ticks VALUES (%s, clock_timestamp())", (number,))
            ticks.add(number)
            changes.append(Change(before, now(connection), frozenset(ticks), dict(files)))
            if number in ADDED_AT:
                content = os.urandom(2000 + number)
                file_uuid = str(uuid.uuid4())
                app.container.upload_blob(app.prefix + file_uuid, content)  # the app stores it, then refers to it
                before = now(connection)
                connection.execute(
                    'INSERT INTO "system$filedocument" (id, "__uuid__", name, size, hascontents, deleteafterdownload) '
                    "VALUES (%s, %s, %s, %s, true, false)",
                    (number, file_uuid, f"file-{number}", len(content)),
                )
                files[file_uuid] = md5_hex(content)
                added.append(file_uuid)
                changes.append(Change(before, now(connection), frozenset(ticks), dict(files)))
                capture(app.environment)
            if number in REMOVED_AT:
                gone = added[REMOVED_AT[number]]
                before = now(connection)
                connection.execute('DELETE FROM "system$filedocument" WHERE "__uuid__" = %s', (gone,))
                del files[gone]
                changes.append(Change(before, now(connection), frozenset(ticks), dict(files)))
                capture(app.environment)
                app.container.delete_blob(app.prefix + gone)  # and then its content goes from the file store
            time.sleep(INTERVAL)
    cluster.wait_archived(cluster.switch_wal())
    return changes


def instants(changes: list[Change], count: int, seed: int) -> list[tuple[datetime, Change]]:
    """``count`` random instants, each between two changes (never inside one's commit), and what holds then."""
    rng = random.Random(seed)
    gaps = rng.sample(range(len(changes) - 1), count)
    picked = []
    for index in sorted(gaps):
        done, following = changes[index], changes[index + 1]
        picked.append((done.after + (following.before - done.after) * rng.uniform(0.2, 0.8), done))
    return picked


def target_ticks(target: ScratchApp) -> set[int]:
    with target.connect() as connection:
        return {row[0] for row in connection.execute("SELECT id FROM ticks")}


def test_restores_to_random_instants_hold_exactly_the_ticks_and_files_of_each(
    storage_services, storage_connection_string, archived, database_factory, postgres_admin_dsn
):
    harness = Harness(storage_connection_string, point_in_time=archived.archive)
    services = harness.services
    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    source = source_app(harness, archived, namespace)
    target = create_scratch_app(
        services, database_factory(), postgres_admin_dsn, namespace=namespace, state="Stopped", documents=2
    )
    changes = history(harness, archived, source)
    window = services.past.window(source.environment_id).window
    assert window.earliest is not None
    assert window.latest is not None
    assert window.earliest <= changes[0].before
    assert window.latest >= changes[-1].before  # its last commit

    seed = random.randrange(1 << 30)
    for instant, expected in instants(changes, 3, seed):
        operation = services.restores.request_to_time(source.environment_id, instant, target.environment_id, ADA)
        harness.drain()
        done = services.restores.get(operation.id)
        assert done.status is OperationStatus.FINISHED, (seed, instant, done.error)
        assert target_ticks(target) == set(expected.ticks), (seed, instant)
        assert target.stored_files() == expected.files, (seed, instant)
        past = services.backup_catalog.get(source.environment_id, str(done.backup_id))
        assert (past.status, past.tier, past.point_in_time) == (BackupStatus.FINISHED, Tier.POINT_IN_TIME, instant)
        assert past.missing_files == 0
    assert processes_in(archived.directory / "scratch") == []  # every temporary instance stopped
    assert list((archived.directory / "scratch").iterdir()) == []  # and its directory removed
