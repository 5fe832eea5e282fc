"""Cancel, through the development host: restores, backups and downloads, the API, the command line
(Ctrl-C during --wait offers it) and the refusals. The work is accepted by a host that runs no queue
work, so it waits exactly where the test wants it; a second host then carries the cancel out."""

import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest
import requests

from shared.domain.environments import EnvironmentState
from tests.support.appdata import source_and_target
from tests.support.apphost import REPO_ROOT, start_app_host
from tests.support.polling import wait_for_status

pytestmark = pytest.mark.e2e

BOB = {"X-MS-CLIENT-PRINCIPAL-ID": "bob-oid", "X-MS-CLIENT-PRINCIPAL-NAME": "bob@example.com"}


@pytest.fixture
def hosts(private_stack, tmp_path):
    """``hosts(queues=False)`` starts a host on the private Azurite; all are stopped afterwards."""
    _, connection_string, _ = private_stack
    started = []

    def start(*, queues: bool = True):
        host = start_app_host(
            connection_string,
            tmp_path / f"host-{len(started)}.log",
            queues=queues,
            extra_settings={
                "APPBACKUPS_OPERATION_RETRY_SECONDS": "1",
                "APPBACKUPS_OPERATION_LEASE_SECONDS": "6",
                "APPBACKUPS_GLOBAL_ADMINS": BOB["X-MS-CLIENT-PRINCIPAL-ID"],
            },
        )
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


@pytest.fixture
def apps(private_stack, database_factory, postgres_admin_dsn):
    return source_and_target(private_stack[0], database_factory, postgres_admin_dsn, documents=4, target_documents=2)


def finished_backup(api: str, app) -> dict:
    created = requests.post(f"{api}/environments/{app.environment_id}/backups", json={}, timeout=30)
    done = wait_for_status(api.removesuffix("/api") + created.headers["Location"], ("Processing",))
    assert done["status"] == "Finished", done
    return done


def test_a_restore_cancelled_before_its_switch_leaves_the_target_as_it_was(hosts, apps, private_stack):
    source, target = apps
    services = private_stack[0]
    worker = hosts()
    backup = finished_backup(worker.api, source)
    worker.stop()
    before_tables, before_files = target.table_contents(), target.stored_files()

    front = hosts(queues=False)
    accepted = requests.post(
        f"{front.api}/environments/{source.environment_id}/backups/{backup['id']}/restore",
        json={"targetEnvironment": target.environment_id},
        timeout=30,
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["cancellable"] is True
    restore_id = accepted.json()["id"]
    cancel_url = f"{front.api}/restores/{restore_id}/cancel"
    cancelled = requests.post(cancel_url, headers=BOB, timeout=30)
    assert cancelled.status_code == 202, cancelled.text
    body = cancelled.json()
    assert (body["status"], body["undoing"], body["cancellable"]) == ("Running", "Cancelled", False)
    assert body["cancel"]["requestedBy"]["name"] == "bob@example.com"
    again = requests.post(cancel_url, headers=BOB, timeout=30)
    assert again.status_code == 202  # idempotent while it undoes

    hosts()  # a worker comes along and carries the cancel out
    done = wait_for_status(f"{front.api}/restores/{restore_id}", ("Running", "Stalled"))
    assert done["status"] == "Cancelled", done
    assert requests.post(cancel_url, headers=BOB, timeout=30).status_code == 200  # and once it is Cancelled
    assert target.table_contents() == before_tables
    assert target.stored_files() == before_files
    environment = services.environment_catalog.get(target.environment_id)
    assert (environment.state, environment.active_restore_id) == (EnvironmentState.STOPPED, None)
    assert services.backup_catalog.get(source.environment_id, backup["id"]).in_use_by == ()
    activity = requests.get(f"{front.api}/environments/{target.environment_id}/activity", timeout=30).json()["items"]
    assert (activity[0]["action"], activity[0]["outcome"], activity[0]["actorName"]) == (
        "restore",
        "CANCELLED",
        "bob@example.com",
    )


def test_a_backup_and_a_download_are_cancelled_and_leave_nothing(hosts, apps, private_stack):
    source, _ = apps
    services = private_stack[0]
    worker = hosts()
    backup = finished_backup(worker.api, source)
    worker.stop()
    front = hosts(queues=False)

    created = requests.post(f"{front.api}/environments/{source.environment_id}/backups", json={}, timeout=30).json()
    backup_url = f"{front.api}/environments/{source.environment_id}/backups/{created['id']}"
    assert requests.post(f"{backup_url}/cancel", headers=BOB, timeout=30).status_code == 202
    download_url = f"{front.api}/environments/{source.environment_id}/backups/{backup['id']}/download"
    requested = requests.post(download_url, json={"dataType": "files_and_database"}, timeout=30)
    assert requested.status_code == 202
    download_cancel = requests.post(f"{download_url}/cancel", headers=BOB, timeout=30)
    assert download_cancel.status_code == 202, download_cancel.text

    hosts()
    cancelled_backup = wait_for_status(backup_url, ("Processing",))
    assert cancelled_backup["status"] == "Cancelled"
    assert "bob@example.com" in cancelled_backup["statusMessage"]
    folder = f"{source.namespace}/{source.environment_id}/{created['id']}/"
    assert list(services.stores.backups.list(folder)) == []
    cancelled_download = wait_for_status(download_url, ("Processing",))
    assert cancelled_download["status"] == "Cancelled"
    assert list(services.stores.archives.list(f"{source.namespace}/{source.environment_id}/{backup['id']}/")) == []
    assert services.backup_catalog.get(source.environment_id, backup["id"]).in_use_by == ()
    outcomes = {
        (entry["action"], entry["outcome"])
        for entry in requests.get(f"{front.api}/environments/{source.environment_id}/activity", timeout=30).json()[
            "items"
        ]
    }
    assert {("backup", "CANCELLED"), ("download", "CANCELLED")} <= outcomes

    finished = requests.post(
        f"{front.api}/environments/{source.environment_id}/backups/{backup['id']}/cancel", timeout=30
    )
    assert (finished.status_code, finished.json()["code"]) == (409, "backup_not_processing")
    ready = requests.post(download_url, json={"dataType": "database_only"}, timeout=30)
    assert ready.status_code == 202
    wait_for_status(f"{download_url}?dataType=database_only", ("Processing",))
    refused = requests.post(f"{download_url}/cancel?dataType=database_only", timeout=30)
    assert (refused.status_code, refused.json()["code"]) == (409, "download_not_processing")


def test_a_finished_restore_cannot_be_cancelled(hosts, apps):
    source, target = apps
    worker = hosts()
    backup = finished_backup(worker.api, source)
    accepted = requests.post(
        f"{worker.api}/environments/{source.environment_id}/backups/{backup['id']}/restore",
        json={"targetEnvironment": target.environment_id},
        timeout=30,
    ).json()
    assert wait_for_status(f"{worker.api}/restores/{accepted['id']}", ("Running", "Stalled"))["status"] == "Finished"
    refused = requests.post(f"{worker.api}/restores/{accepted['id']}/cancel", timeout=30)
    assert (refused.status_code, refused.json()["code"]) == (409, "operation_ended")
    assert "finished" in refused.json()["detail"]


def test_ctrl_c_during_restore_wait_offers_to_cancel(hosts, apps, private_stack):
    source, target = apps
    worker = hosts()
    backup = finished_backup(worker.api, source)
    worker.stop()
    front = hosts(queues=False)
    environment = {**os.environ, "APPBACKUPS_URL": front.api, "APPBACKUPS_CONFIG": "/nonexistent.toml"}
    command = [
        sys.executable,
        "-m",
        "cli",
        "restore",
        f"{source.environment_id}/{backup['id']}",
        "--to",
        target.environment_id,
        "--wait",
    ]
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        command, stdin=follower, stdout=follower, stderr=follower, cwd=REPO_ROOT, env=environment
    )
    os.close(follower)
    try:
        seen = read_until(leader, b"Back up the target")  # the live steps are shown: it is waiting
        process.send_signal(signal.SIGINT)
        seen += read_until(leader, b"Cancel the restore?")
        os.write(leader, b"y\n")
        seen += read_until(leader, b"cancel requested")
        assert process.wait(timeout=30) == 130, seen
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    restore = private_stack[0].operations.find(target.environment.active_restore_id)
    assert restore is not None
    assert restore.cancel_requested_by is not None
    hosts()
    done = wait_for_status(f"{front.api}/restores/{restore.id}", ("Running", "Stalled"))
    assert done["status"] == "Cancelled"


def read_until(fd: int, expected: bytes, timeout: float = 60) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while expected not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"did not see {expected!r} in {seen[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    assert expected in seen, f"did not see {expected!r} in {seen[-2000:]!r}"
    return seen
