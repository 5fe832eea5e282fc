"""Backups through the development host: the queue worker makes them, the API shows them."""

from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.support.appdata import create_scratch_app
from tests.support.polling import wait_for_status

pytestmark = pytest.mark.e2e


@pytest.fixture
def app(storage_services, database_factory, postgres_admin_dsn):
    return create_scratch_app(storage_services, database_factory(), postgres_admin_dsn)


def wait_until_done(api: str, location: str, timeout: float = 90) -> dict:
    return wait_for_status(f"{api.removesuffix('/api')}{location}", "Processing", timeout=timeout)


def test_create_poll_list_edit_delete(api, app):
    created = requests.post(
        f"{api}/environments/{app.environment_id}/backups", json={"comment": "before go-live"}, timeout=30
    )
    assert created.status_code == 202, created.text
    location = created.headers["Location"]
    assert location == f"/api/environments/{app.environment_id}/backups/{created.json()['id']}"
    assert created.headers["Retry-After"]
    assert created.json()["status"] == "Processing"

    details = wait_until_done(api, location)
    assert details["status"] == "Finished", details["statusMessage"]
    for field in (
        "id", "status", "createdOn", "finishedOn", "expiresOn", "deploymentPackage", "modelVersion", "comment",
        "dumpSize", "dumpSha256", "databaseSize", "fileCount", "filesSize", "tier", "createdBy", "namespace",
    ):  # fmt: skip
        assert details[field] not in (None, ""), field
    assert details["comment"] == "before go-live"
    assert details["tier"] == "manual"
    assert details["fileCount"] == 5
    assert details["createdBy"]["id"] == "local-developer"

    listed = requests.get(f"{api}/environments/{app.environment_id}/backups", timeout=30).json()
    assert [item["id"] for item in listed["items"]] == [details["id"]]

    keep_until = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    pinned = requests.patch(f"{api}{location.removeprefix('/api')}", json={"keepUntil": keep_until}, timeout=30)
    assert pinned.status_code == 200, pinned.text
    assert pinned.json()["retainedUntil"] == pinned.json()["keepUntil"]

    for bad, status in (({"keepUntil": "2020-01-01T00:00:00Z"}, 422), ({"keepUntil": "2030-01-01T00:00:00"}, 400)):
        answer = requests.patch(f"{api}{location.removeprefix('/api')}", json=bad, timeout=30)
        assert answer.status_code == status, answer.text
        assert answer.headers["Content-Type"].startswith("application/problem+json")

    deleted = requests.delete(f"{api}{location.removeprefix('/api')}", timeout=30)
    assert deleted.status_code == 204
    assert requests.get(f"{api}{location.removeprefix('/api')}", timeout=30).status_code == 404

    activity = requests.get(f"{api}/environments/{app.environment_id}/activity", timeout=30).json()["items"]
    assert [entry["action"] for entry in activity[:3]] == ["delete", "edit", "backup"]


def test_ineligible_states_and_bad_requests(api, app):
    environment = requests.get(f"{api}/environments/{app.environment_id}", timeout=30).json()
    keys = ("namespace", "appName", "displayName", "database", "files", "modelVersion", "deploymentPackage")
    registration = {key: environment[key] for key in keys}
    for state in ("Deploying", "Creating", "CreationFailed", "Starting", "Stopping"):
        requests.put(f"{api}/environments/{app.environment_id}", json={**registration, "state": state}, timeout=30)
        refused = requests.post(f"{api}/environments/{app.environment_id}/backups", json={}, timeout=30)
        assert refused.status_code == 409
        assert state in refused.json()["detail"]
        assert refused.json()["code"] == "environment_not_eligible"

    too_long = requests.post(
        f"{api}/environments/{app.environment_id}/backups", json={"comment": "x" * 501}, timeout=30
    )
    assert too_long.status_code == 400
    assert too_long.json()["errors"][0]["field"] == "comment"
    assert requests.get(f"{api}/environments/{app.environment_id}/backups/not-a-uuid", timeout=30).status_code == 404
    assert requests.post(f"{api}/environments/no-such-env/backups", json={}, timeout=30).status_code == 404
    bad_page = requests.get(f"{api}/environments/{app.environment_id}/backups", params={"limit": 0}, timeout=30)
    assert bad_page.status_code == 400


def test_a_backup_of_a_stopped_environment_and_paging(api, app):
    environment = requests.get(f"{api}/environments/{app.environment_id}", timeout=30).json()
    requests.post(f"{api}/environments/{app.environment_id}/stop", timeout=30)
    locations = [
        requests.post(f"{api}/environments/{app.environment_id}/backups", json={"comment": str(i)}, timeout=30).headers[
            "Location"
        ]
        for i in range(3)
    ]
    for location in locations:
        assert wait_until_done(api, location)["status"] == "Finished"
    first = requests.get(f"{api}/environments/{app.environment_id}/backups", params={"limit": 2}, timeout=30).json()
    second = requests.get(
        f"{api}/environments/{app.environment_id}/backups",
        params={"limit": 2, "continuationToken": first["continuationToken"]},
        timeout=30,
    ).json()
    assert [item["comment"] for item in first["items"] + second["items"]] == ["2", "1", "0"]
    assert second["continuationToken"] is None
    assert environment["state"] == "Running"
