"""Reading the past, crashed for real: the development host is SIGKILLed while the temporary instance fetches
WAL, and while it runs (recovered, before the dump); a new host resumes the backup of that instant within the
bound the lease sets, the backup holds exactly the database and the file document of the instant, and no
temporary instance — process or directory — is left."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
import requests

from shared.backups.layout import FILES, FileEntry, backup_folder
from shared.bootstrap import Services
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import SYSTEM
from shared.domain.backups import BackupStatus
from shared.domain.operations import OperationStatus
from tests.support.appdata import md5_hex
from tests.support.archiving import ArchivedCluster, archived_cluster, processes_in
from tests.support.dumps import stored_dump
from tests.support.faults import FaultHarness
from tests.support.polling import wait_for
from tools.seed_demo import SCHEMA

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Past:
    services: Services
    cluster: ArchivedCluster
    environment_id: str
    instant: datetime
    file_uuid: str
    file_md5: str
    settings: dict[str, str]

    @property
    def scratch(self) -> Path:
        return self.cluster.directory / "scratch"


@pytest.fixture(scope="module")
def past(private_stack: tuple[Services, str, Path]) -> Iterator[Past]:
    """An environment on a private cluster archiving to Azurite: a customer and a contract (a file document,
    captured), the instant, then the customer renamed by mistake."""
    services, connection_string, _ = private_stack
    container = f"pitr-{uuid.uuid4().hex[:12]}"
    services.clients.blob_service.create_container(container)
    try:
        with archived_cluster(connection_string, container, server="pitr-faults") as cluster:
            with cluster.connect() as connection:
                connection.execute("CREATE DATABASE app")
            with cluster.connect("app") as connection:
                connection.execute(SCHEMA)
            cluster.base_backup()
            suffix = uuid.uuid4().hex[:8]
            files = services.clients.blob_service.get_container_client(f"files-{suffix}")
            files.create_container()
            body = EnvironmentBody.model_validate(
                {
                    "namespace": f"ns-{suffix}",
                    "appName": "pitr",
                    "displayName": "Archived",
                    "state": "Running",
                    "database": {
                        "host": str(cluster.directory),
                        "port": cluster.port,
                        "database": "app",
                        "user": "postgres",
                    },
                    "files": {"container": files.container_name, "prefix": "docs/"},
                    "modelVersion": "1.0.0",
                    "pointInTime": {"server": cluster.server},
                }
            )
            environment_id = f"pitr-{suffix}"
            services.environments.put(environment_id, body.to_registration(), SYSTEM)
            contract, file_uuid = os.urandom(3000), str(uuid.uuid4())
            files.upload_blob(f"docs/{file_uuid}", contract)
            with cluster.connect("app") as connection:
                connection.execute('INSERT INTO "sales$customer" (id, name) VALUES (1, %s)', ("Ada",))
                connection.execute(
                    'INSERT INTO "system$filedocument" (id, "__uuid__", name, size, hascontents) '
                    "VALUES (1, %s, 'contract.pdf', %s, true)",
                    (file_uuid, len(contract)),
                )
                services.captures.capture(services.environment_catalog.get(environment_id))
                time.sleep(0.5)
                instant = connection.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
                time.sleep(0.5)
                connection.execute('UPDATE "sales$customer" SET name = %s WHERE id = 1', ("Changed by mistake",))
            cluster.wait_archived(cluster.switch_wal())
            settings = {
                "APPBACKUPS_POINT_IN_TIME_CONTAINER": container,
                "APPBACKUPS_POINT_IN_TIME_SCRATCH": str(cluster.directory / "scratch"),
            }
            yield Past(services, cluster, environment_id, instant, file_uuid, md5_hex(contract), settings)
    finally:
        services.clients.blob_service.delete_container(container)


@pytest.fixture
def faults(private_stack, past: Past, tmp_path):
    services, connection_string, _ = private_stack
    harness = FaultHarness(services, connection_string, tmp_path, past.settings)
    yield harness
    harness.stop_all()


def customers_in(services: Services, backup, database_factory, postgres_admin_dsn: str, tmp_path: Path) -> list:
    (tmp_path / "db.backup").write_bytes(stored_dump(services.stores, backup))
    database = database_factory()
    subprocess.run(
        ["pg_restore", "-O", "-x", "-h", "127.0.0.1", "-U", "postgres", "-d", database, str(tmp_path / "db.backup")],
        check=True,
        capture_output=True,
    )
    with psycopg.connect(psycopg.conninfo.make_conninfo(postgres_admin_dsn, dbname=database)) as connection:
        return connection.execute('SELECT id, name FROM "sales$customer"').fetchall()


@pytest.mark.parametrize("point", ["pointintime.wal.fetching", "pointintime.instance.running"])
def test_a_backup_of_the_past_killed_mid_way_resumes_and_leaves_no_temporary_instance(
    past: Past, faults: FaultHarness, point: str, database_factory, postgres_admin_dsn, tmp_path
):
    def start(host) -> str:
        created = requests.post(
            f"{host.api}/environments/{past.environment_id}/backups",
            json={"pointInTime": past.instant.isoformat()},
            timeout=60,
        )
        assert created.status_code == 202, created.text
        return created.json()["operationId"]

    def left_behind(operation) -> None:  # the dead host's instance: its directory, and its postgres if it ran
        assert list(past.scratch.iterdir()) != []
        if point == "pointintime.instance.running":
            assert processes_in(past.scratch) != []

    recovery = faults.crash_and_recover(point, start, after_kill=left_behind)
    assert recovery.operation.status is OperationStatus.FINISHED, recovery.operation.error
    assert recovery.operation.step("dump").attempts == 2
    assert recovery.resumed_after is not None
    assert recovery.resumed_after <= recovery.bound, (recovery.resumed_after, recovery.bound)

    (backup,) = [
        backup
        for backup in past.services.backup_catalog.of_environment(past.environment_id)
        if backup.operation_id == recovery.operation.id
    ]
    assert (backup.status, backup.point_in_time) == (BackupStatus.FINISHED, past.instant)
    assert customers_in(past.services, backup, database_factory, postgres_admin_dsn, tmp_path) == [(1, "Ada")]
    folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
    entries = [FileEntry.from_line(line) for line in past.services.stores.backups.read_lines(folder + FILES) if line]
    assert {entry.uuid: entry.md5 for entry in entries} == {past.file_uuid: past.file_md5}
    assert processes_in(past.scratch) == []  # no temporary instance left running
    assert list(past.scratch.iterdir()) == []  # nor its directory


def test_a_backup_of_the_past_cancelled_while_its_instance_is_prepared_leaves_nothing(past: Past, faults: FaultHarness):
    host = faults.start_host()
    created = requests.post(
        f"{host.api}/environments/{past.environment_id}/backups",
        json={"pointInTime": past.instant.isoformat()},
        timeout=60,
    )
    assert created.status_code == 202, created.text
    backup_id, operation_id = created.json()["id"], created.json()["operationId"]
    wait_for(lambda: list(past.scratch.iterdir()), 60, interval=0.05, what="the temporary instance's directory")
    cancelled = requests.post(f"{host.api}/environments/{past.environment_id}/backups/{backup_id}/cancel", timeout=30)
    assert cancelled.status_code == 202, cancelled.text

    wait_for(lambda: not past.services.operations.get(operation_id).open, 60, interval=0.2, what="the cancel")
    assert past.services.operations.get(operation_id).status is OperationStatus.CANCELLED
    assert processes_in(past.scratch) == []
    assert list(past.scratch.iterdir()) == []
