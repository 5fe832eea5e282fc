"""Downloads and uploads against real Azurite and PostgreSQL: Full Snapshot archives out and in."""

import hashlib
import io
import subprocess
import tarfile
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import requests

from shared.adapters.blobs import BlobPermission
from shared.archives.fullsnapshot import tree_path
from shared.backups.layout import FILES, backup_folder
from shared.contracts.backups import BackupView
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus, Tier
from shared.domain.downloads import DataType
from shared.domain.operations import OperationStatus
from tests.support.appdata import create_scratch_app, table_contents
from tests.support.archives import metadata, special, tar_gz
from tests.support.restoring import Harness

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")


@pytest.fixture
def harness(storage_services, storage_connection_string):
    return Harness(storage_connection_string, APPBACKUPS_UPLOAD_MAX_EXPANDED_MB="20")


@pytest.fixture
def app(harness, database_factory, postgres_admin_dsn):
    return create_scratch_app(harness.services, database_factory(), postgres_admin_dsn, documents=5)


def download(harness, app, backup_id, data_type=DataType.FILES_AND_DATABASE):
    prepared, started = harness.services.downloads.request(app.environment_id, backup_id, data_type, ADA)
    assert started
    assert prepared.status == "Processing"
    harness.drain()
    ready = harness.services.downloads.status(app.environment_id, backup_id, data_type)
    assert ready.status == "Ready", ready.operation.error
    return ready


def upload(harness, app, content: bytes):
    session, url = harness.services.uploads.start(app.environment_id, ADA)
    put = requests.put(url, data=content, headers={"x-ms-blob-type": "BlockBlob"}, timeout=60)
    assert put.status_code == 201, put.text
    backup, operation = harness.services.uploads.complete(app.environment_id, session.id, ADA)
    harness.drain()
    return session, harness.services.backup_catalog.get(app.environment_id, backup.id), operation


def test_a_download_restores_by_the_manual_procedure(harness, app, tmp_path, database_factory, postgres_admin_dsn):
    backup_id = harness.backup(app.environment_id, ADA)
    ready = download(harness, app, backup_id)
    assert ready.expires_on - ready.ready_on == timedelta(hours=8)
    assert ready.file_name.endswith(".tar.gz")
    assert ready.file_name.startswith(app.environment_id)
    response = requests.get(ready.url, timeout=60)
    assert response.status_code == 200
    assert ready.file_name in response.headers["Content-Disposition"]
    assert len(response.content) == ready.size
    # Said before it was ready, and stated as an estimate: the members' sizes, which gzip makes no larger.
    assert ready.expected_size_is_estimate
    assert ready.size <= ready.expected_size <= 2 * ready.size, (ready.expected_size, ready.size)
    archive = tmp_path / "snapshot.tar.gz"
    archive.write_bytes(response.content)

    with tarfile.open(archive) as opened:
        names = opened.getnames()
        document = opened.extractfile(".metadata").read()
    assert names[0] == ".metadata"
    import json

    fields = json.loads(document)
    assert all(isinstance(value, str) for value in fields.values())
    for key in ("modelVersion", "dumpSize", "databaseSize", "filesSize", "duration"):
        assert key in fields
    assert fields["modelVersion"] == "1.0.0"
    assert sorted(name for name in names if name.startswith("tree/")) == sorted(tree_path(u) for u in app.files)

    # The documented manual procedure: untar, pg_restore -O -x db/db.backup, copy tree/'s files.
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "xzf", str(archive), "-C", str(unpacked)], check=True)
    empty = database_factory()
    subprocess.run(
        [
            "pg_restore",
            "-O",
            "-x",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            empty,
            str(unpacked / "db" / "db.backup"),
        ],
        check=True,
        capture_output=True,
    )
    assert table_contents(psycopg.conninfo.make_conninfo(postgres_admin_dsn, dbname=empty)) == app.table_contents()
    for file_uuid, content in app.files.items():
        assert (unpacked / tree_path(file_uuid)).read_bytes() == content

    # A second request returns the ready archive instead of building another.
    again, started = harness.services.downloads.request(app.environment_id, backup_id, DataType.FILES_AND_DATABASE, ADA)
    assert (again.status, started, again.operation.id) == ("Ready", False, ready.operation.id)
    entries, _ = harness.services.activity.page(app.environment_id, limit=1, continuation=None)
    assert (entries[0].action.value, entries[0].outcome.value) == ("download", "FINISHED")


def test_database_only_is_the_dump_alone(harness, app):
    backup_id = harness.backup(app.environment_id, ADA)
    ready = download(harness, app, backup_id, DataType.DATABASE_ONLY)
    assert ready.file_name.endswith(".backup")
    content = requests.get(ready.url, timeout=60).content
    assert content.startswith(b"PGDMP")
    backup = harness.services.backup_catalog.get(app.environment_id, backup_id)
    # The stored dump is uncompressed (in chunks, each compressed); the download compresses its data again.
    assert len(content) == ready.size < backup.dump_size
    assert ready.sha256 == hashlib.sha256(content).hexdigest()
    assert ready.expected_size_is_estimate
    assert ready.expected_size == backup.dump_stored_size  # about what the dump's chunks take
    # The backup's own view says the same before any download is asked for (the page shows it in the dialog).
    sizes = BackupView.of(backup).to_json()["downloadSizes"]
    assert sizes["database_only"] == {"size": backup.dump_stored_size, "estimate": True}
    assert sizes["files_and_database"]["estimate"] is True
    assert sizes["files_and_database"]["size"] > len(content)


def test_a_corrupted_content_object_fails_the_download(harness, app):
    backup_id = harness.backup(app.environment_id, ADA)
    backup = harness.services.backup_catalog.get(app.environment_id, backup_id)
    folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
    first = next(harness.services.stores.backups.read_lines(folder + FILES))
    import json

    victim = json.loads(first)["object"]
    content = harness.services.clients.blob_service.get_blob_client("content", victim)
    original = content.download_blob().readall()
    content.upload_blob(b"X" + original[1:], overwrite=True)
    try:
        harness.services.downloads.request(app.environment_id, backup_id, DataType.FILES_AND_DATABASE, ADA)
        harness.drain()
        failed = harness.services.downloads.status(app.environment_id, backup_id, DataType.FILES_AND_DATABASE)
        assert failed.status == "Failed"
        assert "MD5" in failed.operation.error
        assert (
            list(
                harness.services.clients.blob_service.get_container_client("archives").list_blobs(
                    name_starts_with=f"{backup.namespace}/{backup.environment_id}/{backup.id}/{failed.operation.id}/"
                )
            )
            == []
        )
        assert harness.services.backup_catalog.get(app.environment_id, backup_id).in_use_by == ()
    finally:
        content.upload_blob(original, overwrite=True)


def test_a_delete_is_refused_while_a_download_is_prepared(harness, app):
    backup_id = harness.backup(app.environment_id, ADA)
    harness.services.downloads.request(app.environment_id, backup_id, DataType.FILES_AND_DATABASE, ADA)
    from shared.errors import Conflict

    with pytest.raises(Conflict):
        harness.services.backups.delete(app.environment_id, backup_id, ADA)
    harness.drain()
    harness.services.backups.delete(app.environment_id, backup_id, ADA)


def test_an_expired_url_is_refused_by_storage(harness, app):
    backup_id = harness.backup(app.environment_id, ADA)
    ready = download(harness, app, backup_id, DataType.DATABASE_ONLY)
    blob = ready.operation.step("prepare").output["archiveBlob"]
    short = harness.services.stores.archives.signed_url(
        blob, BlobPermission.READ, datetime.now(UTC) + timedelta(seconds=2)
    )
    assert requests.get(short, timeout=30).status_code == 200
    time.sleep(3)
    assert requests.get(short, timeout=30).status_code == 403


def test_expired_archives_are_removed(
    storage_services, storage_connection_string, database_factory, postgres_admin_dsn
):
    later = {"by": timedelta(0)}
    harness = Harness(storage_connection_string, clock=lambda: datetime.now(UTC) + later["by"])
    app = create_scratch_app(harness.services, database_factory(), postgres_admin_dsn, documents=1)
    backup_id = harness.backup(app.environment_id, ADA)
    ready = download(harness, app, backup_id, DataType.DATABASE_ONLY)
    assert ready.operation.id not in [op.id for op in harness.services.downloads.clean_up()]
    assert requests.get(ready.url, timeout=30).status_code == 200
    later["by"] = timedelta(hours=8, minutes=1)
    assert ready.operation.id in [op.id for op in harness.services.downloads.clean_up()]
    assert requests.get(ready.url, timeout=30).status_code == 404
    assert harness.services.downloads.status(app.environment_id, backup_id, None).status == "Expired"


def test_download_upload_restore_round_trip(harness, app, database_factory, postgres_admin_dsn):
    backup_id = harness.backup(app.environment_id, ADA)
    expected_tables, expected_files = app.table_contents(), dict(app.files)
    archive = requests.get(download(harness, app, backup_id).url, timeout=60).content

    _, uploaded, operation = upload(harness, app, archive)
    assert uploaded.status is BackupStatus.FINISHED, uploaded.status_message
    assert uploaded.tier is Tier.UPLOADED
    assert uploaded.file_count == 5
    assert uploaded.files_copied == 0  # the namespace's store had every file already
    assert uploaded.model_version == "1.0.0"
    done = harness.services.operations.get(operation.id)
    assert done.status is OperationStatus.FINISHED

    target = create_scratch_app(
        harness.services, database_factory(), postgres_admin_dsn, namespace=app.namespace, state="Stopped", documents=2
    )
    restore = harness.services.restores.request(app.environment_id, uploaded.id, target.environment_id, ADA)
    harness.drain()
    assert harness.services.restores.get(restore.id).status is OperationStatus.FINISHED
    assert target.table_contents() == expected_tables
    restored = {
        blob.name[len(target.prefix) :]: target.container.get_blob_client(blob.name).download_blob().readall()
        for blob in target.container.list_blobs(name_starts_with=target.prefix)
    }
    assert restored == expected_files


def test_a_flat_tree_and_a_database_only_upload(harness, app, tmp_path):
    backup_id = harness.backup(app.environment_id, ADA)
    dump = requests.get(download(harness, app, backup_id, DataType.DATABASE_ONLY).url, timeout=60).content
    new_file = b"brand new file content"
    flat = tar_gz(
        [(".metadata", metadata()), ("db/db.backup", dump), ("tree/11111111-2222-3333-4444-555555555555", new_file)]
    )
    _, uploaded, _ = upload(harness, app, flat)
    assert uploaded.status is BackupStatus.FINISHED, uploaded.status_message
    assert (uploaded.file_count, uploaded.files_copied) == (1, 1)
    objects = [
        b.name for b in harness.services.stores.content.list(f"{app.namespace}/11111111-2222-3333-4444-555555555555/")
    ]
    assert len(objects) == 1
    assert harness.services.stores.content.read_bytes(objects[0]) == new_file

    _, only_dump, _ = upload(harness, app, dump)
    assert only_dump.status is BackupStatus.FINISHED, only_dump.status_message
    assert (only_dump.file_count, only_dump.dump_size) == (0, len(dump))

    no_tree = tar_gz([("db/db.backup", dump)])
    _, without_tree, _ = upload(harness, app, no_tree)
    assert without_tree.status is BackupStatus.FINISHED, without_tree.status_message


GOOD_UUID = "abcdef01-2345-6789-abcd-ef0123456789"


def refusals(dump: bytes) -> list[tuple[str, bytes, str]]:
    base = [(".metadata", metadata()), ("db/db.backup", dump)]
    good_file = (tree_path(GOOD_UUID), b"a file that must not be kept")
    truncated = tar_gz([*base, good_file])
    return [
        ("traversal", tar_gz([*base, ("../evil", b"x")]), "leaves its folder"),
        ("traversal-in-tree", tar_gz([*base, ("tree/../../etc/passwd", b"x")]), "leaves its folder"),
        ("absolute", tar_gz([*base, ("/etc/passwd", b"x")]), "absolute"),
        ("symlink", tar_gz([*base, ("tree/ab/cd/link", special(tarfile.SYMTYPE, linkname="/etc/passwd"))]), "link"),
        ("hardlink", tar_gz([*base, ("tree/x", special(tarfile.LNKTYPE, linkname="db/db.backup"))]), "link"),
        ("device", tar_gz([*base, ("tree/dev", special(tarfile.CHRTYPE))]), "device"),
        ("fifo", tar_gz([*base, ("tree/fifo", special(tarfile.FIFOTYPE))]), "device"),
        ("unknown", tar_gz([*base, ("notes.txt", b"hello")]), "does not have"),
        ("misplaced-file", tar_gz([*base, (f"tree/zz/zz/{GOOD_UUID}", b"x")]), "does not have"),
        ("duplicate-dump", tar_gz([*base, ("db/db.backup", dump)]), "twice"),
        ("duplicate-file", tar_gz([*base, good_file, (f"tree/{GOOD_UUID}", b"again")]), "twice"),
        ("not-a-dump", tar_gz([(".metadata", metadata()), ("db/db.backup", b"hello, not a dump"), good_file]), "PGDMP"),
        (
            "garbage-dump",
            tar_gz([(".metadata", metadata()), good_file, ("db/db.backup", b"PGDMP" + b"\x00" * 500)]),
            "pg_restore",
        ),
        ("metadata-list", tar_gz([(".metadata", b"[1, 2]"), ("db/db.backup", dump)]), "not a JSON object"),
        ("metadata-text", tar_gz([(".metadata", b"not json"), ("db/db.backup", dump)]), "not JSON"),
        ("truncated", truncated[: len(truncated) // 2], "truncated"),
        ("corrupted", truncated[:20] + b"\xff" * 40 + truncated[60:], "corrupted"),
        ("too-big", tar_gz([*base, (tree_path(GOOD_UUID), b"\x00" * (21 * 1024 * 1024))], level=1), "beyond the limit"),
        ("no-dump", tar_gz([(".metadata", metadata()), good_file]), "no db/db.backup"),
        ("neither", b"just some text", "neither"),
    ]


def test_each_refusal_says_why_and_leaves_nothing_behind(harness, app):
    backup_id = harness.backup(app.environment_id, ADA)
    dump = requests.get(download(harness, app, backup_id, DataType.DATABASE_ONLY).url, timeout=60).content
    content_before = {b.name for b in harness.services.stores.content.list(f"{app.namespace}/")}
    for label, archive, reason in refusals(dump):
        session, refused, operation = upload(harness, app, archive)
        assert refused.status is BackupStatus.FAILED, label
        assert reason in refused.status_message, (label, refused.status_message)
        folder = backup_folder(refused.namespace, refused.environment_id, refused.id)
        assert list(harness.services.stores.backups.list(folder)) == [], label
        assert {b.name for b in harness.services.stores.content.list(f"{app.namespace}/")} == content_before, label
        uploads = harness.services.clients.blob_service.get_container_client("uploads")
        assert list(uploads.list_blobs(name_starts_with=f".pending/{operation.id}/")) == [], label
        assert not uploads.get_blob_client(session.blob_name).exists(), label
        entries, _ = harness.services.activity.page(app.environment_id, limit=1, continuation=None)
        assert (entries[0].action.value, entries[0].outcome.value) == ("upload", "FAILED"), label


def test_the_upload_url_writes_but_does_not_read(harness, app):
    session, url = harness.services.uploads.start(app.environment_id, ADA)
    assert requests.put(url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=30).status_code == 201
    assert requests.get(url, timeout=30).status_code == 403
    other = url.replace(session.id, "another-blob")
    assert requests.put(other, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=30).status_code == 403


def test_completing_before_uploading_is_refused(harness, app):
    from shared.errors import Conflict

    session, _ = harness.services.uploads.start(app.environment_id, ADA)
    with pytest.raises(Conflict) as caught:
        harness.services.uploads.complete(app.environment_id, session.id, ADA)
    assert caught.value.code == "nothing_uploaded"


def test_block_upload_of_a_larger_archive(harness, app):
    """The client side of a large upload: Put Block + Put Block List through the SAS URL."""
    from azure.storage.blob import BlobClient

    backup_id = harness.backup(app.environment_id, ADA)
    archive = requests.get(download(harness, app, backup_id).url, timeout=60).content
    session, url = harness.services.uploads.start(app.environment_id, ADA)
    client = BlobClient.from_blob_url(url, max_single_put_size=1024, max_block_size=4096)
    client.upload_blob(io.BytesIO(archive), overwrite=True)
    backup, _ = harness.services.uploads.complete(app.environment_id, session.id, ADA)
    harness.drain()
    assert harness.services.backup_catalog.get(app.environment_id, backup.id).status is BackupStatus.FINISHED
