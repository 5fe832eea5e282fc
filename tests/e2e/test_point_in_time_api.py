"""Back to any minute through the development host, with nothing but the app settings: the host builds the
barman-cloud archive from APPBACKUPS_POINT_IN_TIME_* (shared/bootstrap.py), an environment on a private cluster
archiving to Azurite is registered with pointInTime, the capture timer is fired through the host's admin API,
the recovery window is read, and `appbackups restore ENV --at T --to TARGET --wait` puts the database and the
file documents as they were at T into another environment; an instant outside the window is a 422 naming it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import requests

from shared.bootstrap import Services
from tests.support.appdata import ScratchApp, create_scratch_app, md5_hex
from tests.support.apphost import AppHost, start_app_host
from tests.support.archiving import ArchivedCluster, archived_cluster, processes_in
from tests.support.polling import wait_for
from tools.seed_demo import SCHEMA

pytestmark = pytest.mark.e2e

COMMAND = Path(sys.executable).with_name("appbackups")


@pytest.fixture
def container(private_stack: tuple[Services, str, Path]) -> Iterator[str]:
    """The archive's container: not the default one, so that the host is seen to read the setting."""
    services, _, _ = private_stack
    name = f"pitr-{uuid.uuid4().hex[:12]}"
    services.clients.blob_service.create_container(name)
    yield name
    services.clients.blob_service.delete_container(name)


@pytest.fixture
def archived(private_stack: tuple[Services, str, Path], container: str) -> Iterator[ArchivedCluster]:
    _, connection_string, _ = private_stack
    with archived_cluster(connection_string, container, server="pitr-e2e") as cluster:
        yield cluster


@pytest.fixture
def host(
    private_stack: tuple[Services, str, Path], container: str, archived: ArchivedCluster, tmp_path: Path
) -> Iterator[AppHost]:
    """A host of the private stack whose point-in-time settings name the cluster's archive and scratch folder
    (queued work is run by it alone: the private stack's queues are nobody else's)."""
    _, connection_string, _ = private_stack
    settings = {
        "APPBACKUPS_POINT_IN_TIME_CONTAINER": container,
        "APPBACKUPS_POINT_IN_TIME_SCRATCH": str(archived.directory / "scratch"),
    }
    app_host = start_app_host(connection_string, tmp_path / "devhost.log", extra_settings=settings)
    yield app_host
    app_host.stop()


def now(connection: psycopg.Connection) -> datetime:
    row = connection.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]


def appbackups(api: str, *arguments: str, cache: Path) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("APPBACKUPS_")}
    environment.update({"APPBACKUPS_CONFIG": os.devnull, "COLUMNS": "200", "XDG_CACHE_HOME": str(cache)})
    return subprocess.run(
        [str(COMMAND), "--url", api, *arguments], capture_output=True, text=True, timeout=180, env=environment
    )


def test_a_restore_to_a_point_in_time_through_the_development_host(
    private_stack, archived, host, database_factory, postgres_admin_dsn, tmp_path
):
    services, _, _ = private_stack
    started = time.monotonic()
    api = host.api
    with archived.connect() as connection:
        connection.execute("CREATE DATABASE app")
    with archived.connect("app") as connection:
        connection.execute(SCHEMA)
    archived.base_backup()

    suffix = uuid.uuid4().hex[:8]
    namespace, source_id = f"ns-{suffix}", f"pitr-{suffix}"
    files = services.clients.blob_service.get_container_client(f"files-{suffix}")
    files.create_container()
    registration = {
        "namespace": namespace,
        "appName": "pitr",
        "displayName": "Archived",
        "state": "Running",
        "database": {"host": str(archived.directory), "port": archived.port, "database": "app", "user": "postgres"},
        "files": {"container": files.container_name, "prefix": "docs/"},
        "modelVersion": "1.0.0",
        "pointInTime": {"server": archived.server},
    }
    response = requests.put(f"{api}/environments/{source_id}", json=registration, timeout=30)
    assert response.status_code in (200, 201), response.text
    target = create_scratch_app(
        services, database_factory(), postgres_admin_dsn, namespace=namespace, state="Stopped", documents=1
    )

    # A customer and an invoice (a file document), then, after T, the customer renamed: the later change.
    contract = os.urandom(3000)
    file_uuid = str(uuid.uuid4())
    files.upload_blob(f"docs/{file_uuid}", contract)
    with archived.connect("app") as connection:
        connection.execute('INSERT INTO "sales$customer" (id, name) VALUES (1, %s)', ("Ada",))
        connection.execute(
            'INSERT INTO "system$filedocument" (id, "__uuid__", name, size, hascontents) VALUES (1, %s, %s, %s, true)',
            (file_uuid, "contract.pdf", len(contract)),
        )
        time.sleep(1)
        instant = now(connection)
        time.sleep(1)
        connection.execute('UPDATE "sales$customer" SET name = %s WHERE id = 1', ("Changed by mistake",))
    archived.wait_archived(archived.switch_wal())

    # The capture timer, through the host's admin API (as Core Tools' is): the invoice's content captured.
    root = api.removesuffix("/api")
    assert requests.post(f"{root}/admin/functions/capture_file_documents", json={"input": ""}, timeout=10).ok
    wait_for(lambda: services.captures.latest_run(source_id), 30, interval=0.3, what="the capture timer's run")

    window = requests.get(f"{api}/environments/{source_id}/recovery-window", timeout=60)
    assert window.status_code == 200, window.text
    earliest, latest = (datetime.fromisoformat(window.json()[key]) for key in ("earliest", "latest"))
    assert earliest <= instant <= latest

    restored = appbackups(
        api, "restore", source_id, "--at", instant.isoformat(), "--to", target.environment_id, "--wait", cache=tmp_path
    )
    assert restored.returncode == 0, (restored.stdout, restored.stderr, host.log()[-3000:])
    assert_restored(target, file_uuid, md5_hex(contract))
    assert processes_in(archived.directory / "scratch") == []  # the temporary instance stopped
    assert list((archived.directory / "scratch").iterdir()) == []  # and its directory removed

    outside = earliest - timedelta(hours=1)
    refused = requests.post(
        f"{api}/environments/{source_id}/restore-to-time",
        json={"pointInTime": outside.isoformat(), "targetEnvironment": target.environment_id},
        timeout=60,
    )
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "instant_outside_window"
    assert "outside the recovery window" in problem["detail"]
    assert datetime.fromisoformat(problem["window"]["earliest"]) == earliest
    assert time.monotonic() - started < 90  # ~30-60 s on a busy 2-core machine


def assert_restored(target: ScratchApp, file_uuid: str, md5: str) -> None:
    """The target holds the customer as it was at T and exactly the file document referred to then."""
    with target.connect() as connection:
        customers = connection.execute('SELECT id, name FROM "sales$customer"').fetchall()
    assert customers == [(1, "Ada")]
    assert target.stored_files() == {file_uuid: md5}
