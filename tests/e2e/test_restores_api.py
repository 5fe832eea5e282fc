"""Restores through the development host: the queue drives the steps, the API shows progress."""

import pytest
import requests

from tests.support.appdata import create_scratch_app, source_and_target
from tests.support.polling import wait_for_status

pytestmark = pytest.mark.e2e


@pytest.fixture
def apps(storage_services, database_factory, postgres_admin_dsn):
    return source_and_target(storage_services, database_factory, postgres_admin_dsn, documents=4, target_documents=5)


def poll(url: str, field: str, busy: str, timeout: float = 120) -> dict:
    return wait_for_status(url, busy, field=field, timeout=timeout)


def test_restore_to_another_environment_with_its_stop_prompt(api, apps):
    source, target = apps
    base = api.removesuffix("/api")
    created = requests.post(f"{api}/environments/{source.environment_id}/backups", json={}, timeout=30)
    backup = poll(base + created.headers["Location"], "status", "Processing")
    assert backup["status"] == "Finished"
    restore_url = f"{api}/environments/{source.environment_id}/backups/{backup['id']}/restore"

    requests.post(f"{api}/environments/{target.environment_id}/start", timeout=30)
    running = requests.post(restore_url, json={"targetEnvironment": target.environment_id}, timeout=30)
    assert running.status_code == 409
    assert running.json()["code"] == "environment_not_stopped"
    assert "stop the environment first" in running.json()["detail"]
    requests.post(f"{api}/environments/{target.environment_id}/stop", timeout=30)

    accepted = requests.post(restore_url, json={"targetEnvironment": target.environment_id}, timeout=30)
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["Location"] == f"/api/restores/{accepted.json()['id']}"
    assert accepted.json()["warnings"] == []
    assert [step["name"] for step in accepted.json()["steps"]] == [
        "pre_restore_backup",
        "switch",
        "clean_up_files",
        "unlock",
    ]
    details = requests.get(f"{api}/environments/{target.environment_id}", timeout=30).json()
    assert (details["state"], details["activeRestoreId"]) == ("Restoring", accepted.json()["id"])
    again = requests.post(restore_url, json={"targetEnvironment": target.environment_id}, timeout=30)
    assert (again.status_code, again.json()["code"]) == (409, "restore_in_progress")

    status = poll(base + accepted.headers["Location"], "status", "Running")
    assert status["status"] == "Finished", status["error"]
    assert all(step["status"] == "Finished" for step in status["steps"])
    assert status["details"]["preRestoreSnapshotId"]
    assert status["steps"][1]["progress"]["total"] == 4
    assert status["steps"][1]["progress"]["percent"] == 100.0
    assert target.table_contents() == source.table_contents()

    details = requests.get(f"{api}/environments/{target.environment_id}", timeout=30).json()
    assert (details["state"], details["activeRestoreId"]) == ("Stopped", None)
    activity = requests.get(f"{api}/environments/{target.environment_id}/activity", timeout=30).json()["items"]
    assert (activity[0]["action"], activity[0]["outcome"]) == ("restore", "FINISHED")


def test_restore_refusals(api, apps, storage_services, database_factory, postgres_admin_dsn):
    source, _ = apps
    other = create_scratch_app(storage_services, database_factory(), postgres_admin_dsn, state="Stopped", documents=0)
    created = requests.post(f"{api}/environments/{source.environment_id}/backups", json={}, timeout=30)
    backup = poll(api.removesuffix("/api") + created.headers["Location"], "status", "Processing")
    restore_url = f"{api}/environments/{source.environment_id}/backups/{backup['id']}/restore"

    cross = requests.post(restore_url, json={"targetEnvironment": other.environment_id}, timeout=30)
    assert (cross.status_code, cross.json()["code"]) == (422, "cross_namespace")
    missing = requests.post(restore_url, json={"targetEnvironment": "no-such-env"}, timeout=30)
    assert missing.status_code == 404
    invalid = requests.post(restore_url, json={}, timeout=30)
    assert invalid.status_code == 400
    assert invalid.json()["errors"][0]["field"] == "targetEnvironment"
    assert requests.get(f"{api}/restores/00000000-0000-0000-0000-000000000000", timeout=30).status_code == 404
