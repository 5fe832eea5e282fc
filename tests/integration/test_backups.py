"""Making backups against real Azurite and PostgreSQL: consistent, incremental, verified, clean on failure."""

import hashlib
import json
import logging
import re
import subprocess
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from shared.backups.layout import FILES, MANIFEST, FileEntry, backup_folder, read_row_counts
from shared.backups.steps import BackupHooks
from shared.clock import utc_now
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus, Tier
from shared.domain.environments import EnvironmentState
from shared.domain.operations import OperationStatus
from shared.errors import Conflict
from tests.support.appdata import create_scratch_app, md5_hex, table_contents
from tests.support.dumps import stored_dump
from tests.support.restoring import Harness, operation_catalog

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")


@pytest.fixture
def harness(storage_connection_string):
    """Fresh services per test (their steps' hooks and settings are the test's to change). Their work
    queues are in memory: the development host of the end-to-end tests consumes the Azurite ones, and
    these tests deliver the messages themselves."""
    return Harness(storage_connection_string, APPBACKUPS_BACKUP_ATTEMPTS="2")


@pytest.fixture
def services(harness):
    return harness.services


@pytest.fixture
def app(services, storage_services, database_factory, postgres_admin_dsn):
    return create_scratch_app(services, database_factory(), postgres_admin_dsn)


def backup(services, app, **kwargs):
    harness = services.harness
    backup_id = harness.backup(app.environment_id, ADA, **kwargs)
    return services.backup_catalog.get(app.environment_id, backup_id)


def dump_progress(services, backup):
    progress = services.operations.get(backup.operation_id).step("dump").progress
    return progress.done, progress.total


def folder_blobs(services, backup) -> list[str]:
    folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
    return [blob.name for blob in services.stores.backups.list(folder)]


def file_entries(services, backup) -> list[FileEntry]:
    folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
    return [FileEntry.from_line(line) for line in services.stores.backups.read_lines(folder + FILES) if line]


def manifest_of(services, backup) -> dict:
    folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
    return json.loads(services.stores.backups.read_bytes(folder + MANIFEST))


def restore_dump(services, backup, database_factory, postgres_admin_dsn, tmp_path) -> str:
    dump = tmp_path / "db.backup"
    dump.write_bytes(stored_dump(services.stores, backup))
    target = database_factory()
    subprocess.run(
        ["pg_restore", "--no-owner", "--no-privileges", "-h", "127.0.0.1", "-U", "postgres", "-d", target, str(dump)],
        check=True,
        capture_output=True,
    )
    return psycopg.conninfo.make_conninfo(postgres_admin_dsn, dbname=target)


def test_a_backup_holds_the_database_and_exactly_the_referenced_files(
    services, app, database_factory, postgres_admin_dsn, tmp_path
):
    no_contents = app.add_document(has_contents=False, upload=False)
    temporary = app.add_document(delete_after_download=True)
    orphan = app.add_orphan_blob()

    backup_record = backup(services, app, comment="first")
    assert dump_progress(services, backup_record) == (len(app.files), len(app.files))

    assert backup_record.status is BackupStatus.FINISHED, backup_record.status_message
    assert backup_record.comment == "first"
    assert backup_record.finished_on is not None
    assert backup_record.finished_on >= backup_record.created_on
    assert backup_record.expires_on == backup_record.created_on + timedelta(days=14)
    assert backup_record.file_count == len(app.files) == 5
    assert backup_record.files_size == sum(len(content) for content in app.files.values())
    assert (backup_record.deployment_package, backup_record.model_version) == ("scratch_1.0.0.mda", "1.0.0")

    folder = backup_folder(backup_record.namespace, backup_record.environment_id, backup_record.id)
    dump = stored_dump(services.stores, backup_record)
    assert dump.startswith(b"PGDMP")
    assert len(dump) == backup_record.dump_size
    assert hashlib.sha256(dump).hexdigest() == backup_record.dump_sha256

    # The dump restores into a scratch database with identical table contents.
    restored = restore_dump(services, backup_record, database_factory, postgres_admin_dsn, tmp_path)
    assert table_contents(restored) == app.table_contents()

    # Exactly the referenced files, each object byte for byte the source.
    entries = file_entries(services, backup_record)
    assert [entry.uuid for entry in entries] == sorted(app.files)
    for entry in entries:
        content = services.stores.content.read_bytes(entry.object)
        assert content == app.files[entry.uuid]
        assert entry.md5 == md5_hex(content)
        assert entry.size == len(content)
    listed = {entry.uuid for entry in entries}
    assert not {no_contents, temporary, orphan} & listed

    manifest = json.loads(services.stores.backups.read_bytes(folder + MANIFEST))
    assert manifest["snapshotId"] == backup_record.id
    assert manifest["database"]["dumpSha256"] == backup_record.dump_sha256
    assert manifest["files"]["count"] == 5

    activity, _ = services.activity.page(app.environment_id, limit=1, continuation=None)
    assert (activity[0].action.value, activity[0].outcome.value, activity[0].backup_id) == (
        "backup",
        "FINISHED",
        backup_record.id,
    )


def file_objects(services, app) -> set[str]:
    """The namespace's file-document content objects (its dump chunks are beside them)."""
    return {
        blob.name
        for blob in services.stores.content.list(f"{app.namespace}/")
        if "/chunks/" not in blob.name and "/packs/" not in blob.name
    }


def test_a_second_backup_copies_no_file_content(services, app):
    first = backup(services, app)
    objects_before = file_objects(services, app)
    assert first.files_copied == 5

    second = backup(services, app)
    assert second.status is BackupStatus.FINISHED
    assert second.files_copied == 0
    assert file_objects(services, app) == objects_before
    assert [e.object for e in file_entries(services, second)] == [e.object for e in file_entries(services, first)]

    new_file = app.add_document()
    third = backup(services, app)
    assert third.files_copied == 1
    assert new_file in {entry.uuid for entry in file_entries(services, third)}


def test_files_without_a_content_md5_are_hashed_once(services, app):
    """Blobs uploaded in blocks carry no Content-MD5; the backup hashes them the first time only."""
    from azure.storage.blob import BlobBlock

    big = b"x" * 300_000
    file_uuid = app.add_document(upload=False, content=big)
    client = app.container.get_blob_client(app.prefix + file_uuid)
    client.stage_block("YmxvY2sx", big)
    client.commit_block_list([BlobBlock("YmxvY2sx")])
    assert client.get_blob_properties().content_settings.content_md5 is None

    first = backup(services, app)
    entry = next(e for e in file_entries(services, first) if e.uuid == file_uuid)
    assert entry.md5 == md5_hex(big)
    assert services.stores.content.info(entry.object).metadata["md5"] == md5_hex(big)
    assert manifest_of(services, first)["files"]["hashed"] == 1

    second = backup(services, app)
    assert second.files_copied == 0
    assert manifest_of(services, second)["files"]["hashed"] == 0


def test_a_write_after_the_snapshot_began_is_in_neither_the_dump_nor_the_file_list(
    services, app, database_factory, postgres_admin_dsn, tmp_path
):
    late = {}

    def write_meanwhile(exported):
        # Committed by the app after the backup's backup was taken, with the export still open:
        # neither the file list nor pg_dump may see it, and the app's writer is not blocked.
        with psycopg.connect(app.dsn, autocommit=True) as connection:
            connection.execute("SET lock_timeout = '2s'")
            connection.execute("UPDATE \"sales$customer\" SET name = 'changed' WHERE id = 1")
        late["uuid"] = app.add_document()
        app.add_customers(1, start=1000)

    services.backup_steps.hooks = BackupHooks(after_snapshot_exported=write_meanwhile)
    backup_record = backup(services, app)
    assert backup_record.status is BackupStatus.FINISHED, backup_record.status_message

    assert late["uuid"] not in {entry.uuid for entry in file_entries(services, backup_record)}
    assert backup_record.file_count == len(app.files) - 1
    restored = table_contents(restore_dump(services, backup_record, database_factory, postgres_admin_dsn, tmp_path))
    customers = restored['public."sales$customer"']
    assert 1000 not in [row[0] for row in customers]
    assert next(row for row in customers if row[0] == 1)[1] == "Customer 1"
    assert late["uuid"] not in [row[1] for row in restored['public."system$filedocument"']]


def test_a_custom_file_document_query(services, app):
    with app.connect() as connection:
        connection.execute("CREATE TABLE attachments (file_key text)")
        keep = app.add_document(has_contents=False)  # hidden from the default query
        app.container.upload_blob(app.prefix + keep, b"attached", overwrite=True)
        connection.execute("INSERT INTO attachments VALUES (%s), (%s), (NULL)", (keep, keep))
    _reregister(services, app, fileDocumentQuery="SELECT file_key FROM attachments")
    assert app.environment.file_document_query == "SELECT file_key FROM attachments"

    backup_record = backup(services, app)
    assert backup_record.status is BackupStatus.FINISHED, backup_record.status_message
    assert [entry.uuid for entry in file_entries(services, backup_record)] == [keep]
    assert dump_progress(services, backup_record) == (1, 1)  # the total counts distinct uuids, as the list does


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda app, services: _reregister(services, app, database="appbackups_no_such_db"), "does not exist"),
        (lambda app, services: _reregister(services, app, user="no_such_role"), "no_such_role"),
        (lambda app, services: _reregister(services, app, passwordSetting="MISSING_SETTING"), "MISSING_SETTING"),
        (lambda app, services: _reregister(services, app, container="no-such-container"), "does not exist"),
    ],
    ids=["missing-database", "wrong-credentials", "missing-password-setting", "missing-container"],
)
def test_failures_leave_a_failed_backup_with_a_reason_and_no_data(services, app, break_it, expected):
    break_it(app, services)
    backup_record = backup(services, app)
    assert backup_record.status is BackupStatus.FAILED
    assert expected in backup_record.status_message
    assert folder_blobs(services, backup_record) == []
    activity, _ = services.activity.page(app.environment_id, limit=1, continuation=None)
    assert (activity[0].outcome.value, activity[0].backup_id) == ("FAILED", backup_record.id)


def test_a_backup_that_fails_for_good_logs_the_line_the_failed_backups_alert_matches(services, app, caplog):
    query = (Path(__file__).resolve().parents[2] / "infra" / "alerts" / "failed-backups.kql").read_text()
    (pattern,) = re.findall(r'matches regex @"([^"]+)"', query)
    (environment_pattern,) = re.findall(r'extract\(@"([^"]+)", 1, message\)', query)
    _reregister(services, app, database="appbackups_no_such_db")
    with caplog.at_level(logging.INFO):
        backup_record = backup(services, app)
    assert backup_record.status is BackupStatus.FAILED
    matching = [record.getMessage() for record in caplog.records if re.search(pattern, record.getMessage())]
    assert len(matching) == 1, [record.getMessage() for record in caplog.records]
    assert re.search(environment_pattern, matching[0])[1] == app.environment_id
    assert backup_record.id in matching[0]


def test_a_missing_file_blob_finishes_the_backup_with_a_warning_that_counts_and_names_it(services, app):
    gone = app.add_document()
    app.container.delete_blob(app.prefix + gone)
    backup_record = backup(services, app)
    assert backup_record.status is BackupStatus.FINISHED, backup_record.status_message
    assert (backup_record.missing_files, backup_record.missing_file_uuids) == (1, (gone,))
    (warning,) = backup_record.warnings
    assert gone in warning
    assert warning.startswith("1 file document referred to by the database had no content")
    listed = {entry.uuid for entry in file_entries(services, backup_record)}
    assert gone not in listed
    assert listed == set(app.files) - {gone}
    assert manifest_of(services, backup_record)["files"]["missing"] == 1
    entries, _ = services.activity.page(app.environment_id, limit=1, continuation=None)
    assert "Warning: 1 file documents had no content." in entries[0].message
    # A restore of it says so in its warnings.
    plan = services.restores.plan(app.environment_id, backup_record.id, app.environment_id, ADA)
    (missing,) = [check for check in plan.checks if check.name == "missing_files"]
    assert missing.status.value == "warn"
    assert "1 file documents had no content" in missing.reason


def test_with_missing_files_fail_a_missing_file_blob_fails_the_backup_cleanly(services, app):
    _reregister(services, app, missingFiles="fail")
    gone = app.add_document()
    app.container.delete_blob(app.prefix + gone)
    backup_record = backup(services, app)
    assert backup_record.status is BackupStatus.FAILED
    assert gone in backup_record.status_message
    assert "missing" in backup_record.status_message
    assert "missingFiles setting is fail" in backup_record.status_message
    assert folder_blobs(services, backup_record) == []


def test_a_backup_records_the_exact_row_counts_of_its_snapshot(services, app):
    customers = len(app.table_contents()['public."sales$customer"'])
    app.add_customers(7, start=1000)
    backup_record = backup(services, app)
    counts = read_row_counts(services.stores.backups, backup_record)
    assert counts is not None
    assert counts['public."sales$customer"'] == customers + 7
    assert counts['public."system$filedocument"'] == len(app.files)
    assert backup_record.table_count == len(counts)
    assert backup_record.row_count == sum(counts.values())
    assert backup_record.server_version >= 100000


def _drop_backup_connections(app):
    with psycopg.connect(app.dsn, autocommit=True) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'appbackups' "
            "AND datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_a_dropped_connection_is_retried_and_the_retry_finishes(harness, services, app):
    calls = []

    def drop_connection(exported):
        calls.append(1)
        if len(calls) == 1:
            _drop_backup_connections(app)

    services.backup_steps.hooks = BackupHooks(after_snapshot_exported=drop_connection)
    backup = services.backups.request(app.environment_id, ADA)
    assert harness.deliver()
    waiting = services.backup_catalog.get(app.environment_id, backup.id)
    assert waiting.status is BackupStatus.PROCESSING
    step = services.operations.get(backup.operation_id).step("dump")
    assert "Attempt 1 of 2 failed" in step.message
    assert folder_blobs(services, waiting) == []

    harness.drain()
    finished = services.backup_catalog.get(app.environment_id, backup.id)
    assert finished.status is BackupStatus.FINISHED
    assert finished.attempts == 2


def test_a_dropped_connection_on_the_last_attempt_fails(harness, services, app):
    services.backup_steps.hooks = BackupHooks(after_snapshot_exported=lambda exported: _drop_backup_connections(app))
    backup = services.backups.request(app.environment_id, ADA)
    harness.drain()
    failed = services.backup_catalog.get(app.environment_id, backup.id)
    assert failed.status is BackupStatus.FAILED
    assert "connection" in failed.status_message
    assert failed.attempts == 2
    assert folder_blobs(services, failed) == []


def test_a_worker_that_died_is_resumed_once_its_lease_ran_out(harness, services, app):
    backup = services.backups.request(app.environment_id, ADA)
    harness.queues["operation-work"].clear()
    operation = services.operations.get(backup.operation_id)
    # A worker claimed it and died mid-dump: the step is Running under a lease nobody renews.
    dead = operation_catalog(services).save(
        replace(
            operation.with_step(0, status=operation.steps[0].status.RUNNING, attempts=1),
            lease_owner="dead-worker",
            lease_until=utc_now() - timedelta(seconds=1),
        )
    )
    services.operations.handle(dead.id, watch="dead-worker")  # its watchdog
    finished = services.backup_catalog.get(app.environment_id, backup.id)
    assert finished.status is BackupStatus.FINISHED
    assert finished.attempts == 2


def test_a_duplicate_message_while_a_worker_holds_the_lease_does_nothing(services, app):
    backup = services.backups.request(app.environment_id, ADA)
    operation = services.operations.get(backup.operation_id)
    held = operation_catalog(services).save(
        replace(operation, lease_owner="live-worker", lease_until=utc_now() + timedelta(minutes=2))
    )
    assert services.operations.handle(held.id) is None
    assert services.operations.get(held.id).etag == held.etag
    assert services.backup_catalog.get(app.environment_id, backup.id).status is BackupStatus.PROCESSING


def test_the_reaper_fails_a_backup_that_no_work_is_making(storage_connection_string, services, app):
    recorded = services.backups.record(app.environment_id, ADA)
    orphan = services.backup_catalog.save(replace(recorded, operation_id="never-recorded"))
    assert services.reaper.reap().orphans_failed == []  # too new: it may be being started right now
    later = Harness(storage_connection_string, clock=lambda: utc_now() + timedelta(minutes=10))
    reaped = later.services.reaper.reap()
    assert orphan.id in [item.id for item in reaped.orphans_failed]
    failed = services.backup_catalog.get(app.environment_id, orphan.id)
    assert failed.status is BackupStatus.FAILED
    assert "never recorded" in failed.status_message


def test_a_backup_is_cancelled_while_it_is_made_and_leaves_nothing(harness, services, app):
    bob = Principal(id="bob", name="Bob")

    def cancel_while_dumping(exported):
        services.backups.cancel(app.environment_id, backup_record.id, bob)

    services.backup_steps.hooks = BackupHooks(after_snapshot_exported=cancel_while_dumping)
    backup_record = services.backups.request(app.environment_id, ADA)
    harness.drain()
    cancelled = services.backup_catalog.get(app.environment_id, backup_record.id)
    assert cancelled.status is BackupStatus.CANCELLED
    assert "Bob" in cancelled.status_message
    assert folder_blobs(services, cancelled) == []
    assert services.operations.get(backup_record.operation_id).status is OperationStatus.CANCELLED
    activity, _ = services.activity.page(app.environment_id, limit=1, continuation=None)
    assert (activity[0].outcome.value, activity[0].actor_name) == ("CANCELLED", "Bob")
    assert services.backups.cancel(app.environment_id, backup_record.id, bob).status is BackupStatus.CANCELLED
    done = backup(services, app)
    with pytest.raises(Conflict) as refused:
        services.backups.cancel(app.environment_id, done.id, bob)
    assert refused.value.code == "backup_not_processing"


def test_eligibility_paging_edit_and_delete(services, app):
    ids = [backup(services, app).id for _ in range(3)]
    page, token = services.backups.page(app.environment_id, limit=2, continuation=None)
    rest, end = services.backups.page(app.environment_id, limit=2, continuation=token)
    assert [s.id for s in page + rest] == list(reversed(ids))
    assert end is None

    edited = services.backups.edit(app.environment_id, ids[0], ADA, comment="keep me")
    assert edited.comment == "keep me"

    newest = services.backup_catalog.get(app.environment_id, ids[-1])
    services.backups.delete(app.environment_id, ids[-1], ADA)
    assert folder_blobs(services, newest) == []
    assert services.backup_catalog.find(app.environment_id, ids[-1]) is None

    processing = services.backups.request(app.environment_id, ADA)
    with pytest.raises(Conflict):
        services.backups.delete(app.environment_id, processing.id, ADA)

    _reregister(services, app, state="Deploying")
    with pytest.raises(Conflict) as caught:
        services.backups.request(app.environment_id, ADA)
    assert "Deploying" in caught.value.detail


def test_a_pre_restore_backup_is_made_while_the_environment_is_restoring(harness, services, app):
    environment = services.environment_catalog.get(app.environment_id)
    services.environment_catalog.save(
        replace(environment, state=EnvironmentState.RESTORING, active_restore_id="some-restore")
    )
    with pytest.raises(Conflict) as refused:
        services.backups.request(app.environment_id, ADA)
    assert refused.value.code == "environment_not_eligible"
    backup = services.backups.request(app.environment_id, ADA, tier=Tier.PRE_RESTORE)
    assert backup.expires_on == backup.created_on + timedelta(days=14)
    harness.drain()
    made = services.backup_catalog.get(app.environment_id, backup.id)
    assert made.status is BackupStatus.FINISHED, made.status_message
    assert made.file_count == len(app.files)


def _reregister(services, app, **changes):
    from shared.contracts.environments import EnvironmentBody, EnvironmentView

    view = EnvironmentView.of(services.environments.get(app.environment_id)).to_json()
    keys = ("namespace", "appName", "displayName", "state", "database", "files", "modelVersion", "deploymentPackage")
    registration = {key: view[key] for key in keys}
    for key, value in changes.items():
        if key in ("database", "user", "passwordSetting"):
            registration["database"] = {**registration["database"], key: value}
        elif key == "container":
            registration["files"] = {**registration["files"], "container": value}
        else:
            registration[key] = value
    services.environments.put(app.environment_id, EnvironmentBody.model_validate(registration).to_registration(), ADA)


def test_the_dump_never_blocks_the_apps_writers(
    storage_connection_string, storage_services, database_factory, postgres_admin_dsn
):
    services = Harness(storage_connection_string, APPBACKUPS_BLOCK_SIZE_MB="1").services
    app = create_scratch_app(services, database_factory(), postgres_admin_dsn, documents=1, customers=0)
    with app.connect() as connection:  # enough data that pg_dump is still at work after the first block
        connection.execute(
            'INSERT INTO "sales$customer" (id, name, email) '
            "SELECT n, md5(n::text) || repeat(md5(random()::text), 5), 'x' FROM generate_series(1, 60000) n"
        )
    observed = {}

    def write_while_dumping():
        with psycopg.connect(app.dsn, autocommit=True) as connection:
            observed["pg_dump running"] = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'appbackups' "
                "AND query LIKE 'COPY %' AND datname = current_database()"
            ).fetchone()[0]
            connection.execute("SET lock_timeout = '2s'")
            connection.execute("UPDATE \"sales$customer\" SET email = 'y' WHERE id = 1")
            connection.execute("INSERT INTO \"sales$customer\" (id, name) VALUES (999999, 'new')")
            observed["wrote"] = True

    services.backup_steps.hooks = BackupHooks(after_first_dump_chunk=write_while_dumping)
    backup_record = backup(services, app)
    assert backup_record.status is BackupStatus.FINISHED, backup_record.status_message
    assert observed == {"pg_dump running": 1, "wrote": True}


def test_abandon_respects_a_live_lease(services, app):
    backup = services.backups.request(app.environment_id, ADA)
    operation = services.operations.get(backup.operation_id)
    held = operation_catalog(services).save(
        replace(operation, lease_owner="live", lease_until=utc_now() + timedelta(minutes=1))
    )
    assert services.operations.abandon(held.id, "poisoned") is None
    operation_catalog(services).save(replace(services.operations.get(held.id), lease_until=utc_now()))
    assert services.operations.abandon(held.id, "poisoned") is not None
    failed = services.backup_catalog.get(app.environment_id, backup.id)
    assert (failed.status, failed.status_message) == (BackupStatus.FAILED, "poisoned")
