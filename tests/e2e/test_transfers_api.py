"""Downloads and uploads through the development host, with the archive moved over its SAS URLs."""

import pytest
import requests

from tests.support.appdata import create_scratch_app
from tests.support.polling import wait_for_status

pytestmark = pytest.mark.e2e


@pytest.fixture
def app(storage_services, database_factory, postgres_admin_dsn):
    return create_scratch_app(storage_services, database_factory(), postgres_admin_dsn, documents=3)


def poll(url: str, busy: str, timeout: float = 120, **params) -> dict:
    return wait_for_status(url, busy, timeout=timeout, **params)


def test_download_then_upload_it_back(api, app):
    base = api.removesuffix("/api")
    created = requests.post(f"{api}/environments/{app.environment_id}/backups", json={}, timeout=30)
    backup = poll(base + created.headers["Location"], "Processing")
    download_url = f"{api}/environments/{app.environment_id}/backups/{backup['id']}/download"

    assert requests.get(download_url, timeout=30).status_code == 404  # nothing requested yet
    requested = requests.post(download_url, json={"dataType": "files_and_database"}, timeout=30)
    assert requested.status_code == 202, requested.text
    assert requested.json()["status"] == "Processing"
    ready = poll(download_url, "Processing")
    assert ready["status"] == "Ready", ready
    assert ready["url"]
    assert ready["expiresOn"]
    assert ready["fileName"].endswith(".tar.gz")
    again = requests.post(download_url, json={}, timeout=30)
    assert (again.status_code, again.json()["status"]) == (200, "Ready")
    archive = requests.get(ready["url"], timeout=60)
    assert archive.status_code == 200
    assert archive.content[:2] == b"\x1f\x8b"

    started = requests.post(f"{api}/environments/{app.environment_id}/uploads", timeout=30)  # no body: allowed
    assert started.status_code == 201, started.text
    upload = started.json()
    put = requests.put(upload["uploadUrl"], data=archive.content, headers={"x-ms-blob-type": "BlockBlob"}, timeout=60)
    assert put.status_code == 201
    completed = requests.post(base + upload["completeUrl"], timeout=30)
    assert completed.status_code == 202, completed.text
    assert (
        completed.headers["Location"]
        == f"/api/environments/{app.environment_id}/backups/{completed.json()['backupId']}"
    )
    uploaded = poll(base + completed.headers["Location"], "Processing")
    assert (uploaded["status"], uploaded["tier"], uploaded["fileCount"]) == ("Finished", "uploaded", 3)
    assert uploaded["comment"] == "Uploaded archive"
    assert uploaded["filesCopied"] == 0

    listed = requests.get(f"{api}/environments/{app.environment_id}/backups", timeout=30).json()["items"]
    assert [item["tier"] for item in listed[:2]] == ["uploaded", "manual"]


def test_a_refused_upload_says_why(api, app):
    base = api.removesuffix("/api")
    upload = requests.post(
        f"{api}/environments/{app.environment_id}/uploads", json={"fileName": "notes.txt"}, timeout=30
    ).json()
    requests.put(upload["uploadUrl"], data=b"not an archive", headers={"x-ms-blob-type": "BlockBlob"}, timeout=30)
    completed = requests.post(base + upload["completeUrl"], timeout=30)
    assert completed.status_code == 202
    refused = poll(base + completed.headers["Location"], "Processing")
    assert refused["status"] == "Failed"
    assert "neither a Full Snapshot archive" in refused["statusMessage"]
    assert refused["comment"] == "Uploaded notes.txt"


def test_transfer_errors(api, app):
    base = api.removesuffix("/api")
    upload = requests.post(f"{api}/environments/{app.environment_id}/uploads", timeout=30).json()
    early = requests.post(base + upload["completeUrl"], timeout=30)
    assert (early.status_code, early.json()["code"]) == (409, "nothing_uploaded")
    unknown = requests.post(f"{api}/environments/{app.environment_id}/uploads/nope/complete", timeout=30)
    assert unknown.status_code == 404
    too_long = requests.post(
        f"{api}/environments/{app.environment_id}/uploads", json={"fileName": "x" * 256}, timeout=30
    )
    assert (too_long.status_code, too_long.json()["errors"][0]["field"]) == (400, "fileName")
    created = requests.post(f"{api}/environments/{app.environment_id}/backups", json={}, timeout=30)
    backup = created.json()
    bad_type = requests.post(
        f"{api}/environments/{app.environment_id}/backups/{backup['id']}/download", json={"dataType": "zip"}, timeout=30
    )
    assert bad_type.status_code == 400
    bad_query = requests.get(
        f"{api}/environments/{app.environment_id}/backups/{backup['id']}/download",
        params={"dataType": "zip"},
        timeout=30,
    )
    assert bad_query.status_code == 400
