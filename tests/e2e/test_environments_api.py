"""Environments through the development host, over HTTP, on Azurite."""

import itertools
import threading
import uuid

import pytest
import requests

pytestmark = pytest.mark.e2e


def registration(namespace: str = "e2e", **changes) -> dict:
    body = {
        "namespace": namespace,
        "appName": "app",
        "displayName": "E2E",
        "state": "Running",
        "database": {"host": "127.0.0.1", "database": "e2e", "user": "postgres", "passwordSetting": "E2E_PASSWORD"},
        "files": {"container": "e2e-files", "prefix": "docs/"},
        "modelVersion": "2.0.0",
    }
    body.update(changes)
    return body


@pytest.fixture
def environment_id() -> str:
    return f"env-{uuid.uuid4().hex[:10]}"


def test_register_get_list_update(api, environment_id):
    created = requests.put(f"{api}/environments/{environment_id}", json=registration(), timeout=30)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/api/environments/{environment_id}"
    assert created.headers["Content-Type"].startswith("application/json")
    etag = created.headers["ETag"]

    fetched = requests.get(f"{api}/environments/{environment_id}", timeout=30)
    assert fetched.status_code == 200
    assert fetched.json()["database"]["passwordSetting"] == "E2E_PASSWORD"
    assert "password" not in {key.lower() for key in fetched.json()["database"]}

    listed = requests.get(f"{api}/environments", timeout=30).json()["items"]
    assert environment_id in [item["id"] for item in listed]

    updated = requests.put(
        f"{api}/environments/{environment_id}",
        json=registration(deploymentPackage="app_2.mda"),
        headers={"If-Match": etag},
        timeout=30,
    )
    assert updated.status_code == 200
    assert updated.json()["deploymentPackage"] == "app_2.mda"

    stale = requests.put(
        f"{api}/environments/{environment_id}", json=registration(), headers={"If-Match": etag}, timeout=30
    )
    assert stale.status_code == 412
    assert stale.headers["Content-Type"].startswith("application/problem+json")


def test_stop_start_and_activity(api, environment_id):
    requests.put(f"{api}/environments/{environment_id}", json=registration(), timeout=30)
    stop = requests.post(f"{api}/environments/{environment_id}/stop", timeout=30)
    assert (stop.status_code, stop.json()["state"]) == (200, "Stopped")
    start = requests.post(f"{api}/environments/{environment_id}/start", timeout=30)
    assert (start.status_code, start.json()["state"]) == (200, "Running")
    activity = requests.get(f"{api}/environments/{environment_id}/activity", params={"limit": 2}, timeout=30).json()
    assert [entry["action"] for entry in activity["items"]] == ["start", "stop"]
    assert all(entry["outcome"] == "FINISHED" for entry in activity["items"])
    rest = requests.get(
        f"{api}/environments/{environment_id}/activity",
        params={"limit": 2, "continuationToken": activity["continuationToken"]},
        timeout=30,
    ).json()
    assert [entry["action"] for entry in rest["items"]] == ["register"]


def test_concurrent_conflicting_state_changes_do_not_lose_an_update(api, environment_id):
    """Many stops and starts at once: every answer is 200 or 409, and the activity log agrees
    with the final state (no transition was written over by another)."""
    requests.put(f"{api}/environments/{environment_id}", json=registration(), timeout=30)
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def flip(action: str) -> None:
        barrier.wait()
        statuses.append(requests.post(f"{api}/environments/{environment_id}/{action}", timeout=60).status_code)

    threads = [threading.Thread(target=flip, args=("stop" if i % 2 else "start",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {200, 409}
    final = requests.get(f"{api}/environments/{environment_id}", timeout=30).json()["state"]
    entries = requests.get(f"{api}/environments/{environment_id}/activity", params={"limit": 50}, timeout=30).json()
    transitions = [entry["action"] for entry in entries["items"] if entry["action"] in ("stop", "start")]
    expected_state = "Running"
    for action in reversed(transitions):
        expected_state = "Stopped" if action == "stop" else "Running"
    assert final == expected_state
    for newer, older in itertools.pairwise(transitions):
        assert newer != older, "two identical transitions in a row mean one was lost"


def test_problem_responses(api, environment_id):
    bad_json = requests.put(
        f"{api}/environments/{environment_id}", data=b"{oops", headers={"Content-Type": "application/json"}, timeout=30
    )
    assert bad_json.status_code == 400
    assert bad_json.headers["Content-Type"].startswith("application/problem+json")
    assert bad_json.json()["code"] == "invalid_json"

    invalid = requests.put(
        f"{api}/environments/{environment_id}", json=registration(files={"container": "Bad_Name"}), timeout=30
    )
    assert invalid.status_code == 400
    assert [error["field"] for error in invalid.json()["errors"]] == ["files.container"]

    missing = requests.get(f"{api}/environments/{environment_id}", timeout=30)
    assert (missing.status_code, missing.json()["code"]) == (404, "environment_not_found")

    wrong_method = requests.delete(f"{api}/environments/{environment_id}/stop", timeout=30)
    assert wrong_method.status_code == 405

    unknown = requests.get(f"{api}/no/such/route", timeout=30)
    assert unknown.status_code == 404


def test_health(api):
    health = requests.get(f"{api}/health", timeout=60)
    assert health.status_code == 200
    document = health.json()
    assert {check["name"]: check["status"] for check in document["storage"]} == {
        "blob": "ok",
        "table": "ok",
        "queue": "ok",
    }
