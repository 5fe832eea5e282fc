"""Restores against real Azurite and PostgreSQL: equal to the backup, atomic, resumable."""

import threading
import time
from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest

from shared.backups.layout import read_file_list
from shared.config import Tables
from shared.contracts.environments import EnvironmentBody, EnvironmentView
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus
from shared.domain.environments import EnvironmentState
from shared.domain.operations import OperationStatus, StepStatus
from shared.errors import Conflict, Unprocessable
from tests.support.appdata import create_scratch_app, source_and_target
from tests.support.restoring import Harness, operation_catalog, schema_text
from tests.support.storage_faults import StorageOutage

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")


class WorkerKilled(BaseException):
    """Stands for the worker process dying: nothing in the engine catches it."""


@pytest.fixture
def harness(storage_services, storage_connection_string):
    return Harness(storage_connection_string)


@pytest.fixture
def apps(harness, database_factory, postgres_admin_dsn):
    return source_and_target(harness.services, database_factory, postgres_admin_dsn)


def blobs(app) -> dict[str, bytes]:
    return {
        blob.name[len(app.prefix) :]: app.container.get_blob_client(blob.name).download_blob().readall()
        for blob in app.container.list_blobs(name_starts_with=app.prefix)
    }


def reregister(services, app, **changes):
    view = EnvironmentView.of(services.environments.get(app.environment_id)).to_json()
    keys = ("namespace", "appName", "displayName", "state", "database", "files", "modelVersion", "deploymentPackage")
    services.environments.put(
        app.environment_id,
        EnvironmentBody.model_validate({**{k: view[k] for k in keys}, **changes}).to_registration(),
        ADA,
    )


def database_name(app) -> str:
    return psycopg.conninfo.conninfo_to_dict(app.dsn)["dbname"]


def test_restore_into_another_environment_equals_the_snapshot(harness, apps):
    source, target = apps
    services = harness.services
    backup_id = harness.backup(source.environment_id, ADA)
    expected_tables = source.table_contents()
    expected_files = dict(source.files)

    # After the backup, the source changes; the target has its own tables and files.
    source.add_document()
    with target.connect() as connection:
        connection.execute("CREATE TABLE added_later (id int)")
        connection.execute("CREATE SCHEMA extra; CREATE TABLE extra.things (id int)")
    stray = target.add_orphan_blob()

    operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    assert operation.status is OperationStatus.RUNNING
    locked = services.environments.get(target.environment_id)
    assert (locked.state, locked.active_restore_id) == (EnvironmentState.RESTORING, operation.id)
    assert services.backup_catalog.get(source.environment_id, backup_id).in_use_by == (f"restore {operation.id}",)

    harness.drain()
    done = services.restores.get(operation.id)
    assert done.status is OperationStatus.FINISHED, done.error
    assert [step.status for step in done.steps] == [StepStatus.FINISHED] * 4
    assert all(step.started_on and step.finished_on for step in done.steps)
    assert done.step("switch").progress.done == done.step("switch").progress.total == 6
    assert done.step("switch").progress.bytes_done == done.step("switch").progress.bytes_total > 0
    target_files = len(target.files)
    pre_restore = done.step("pre_restore_backup").progress
    assert (pre_restore.done, pre_restore.total) == (target_files, target_files)
    clean_up = done.step("clean_up_files").progress
    assert (clean_up.done, clean_up.total) == (6 + target_files + 1, 6 + target_files + 1)  # + the stray
    assert clean_up.detail == f"0 replaced, {target_files + 1} removed"

    assert target.table_contents() == expected_tables  # added_later and extra.things are gone
    assert blobs(target) == expected_files  # backup files in place, the target's own and the stray removed
    assert stray not in blobs(target)

    unlocked = services.environments.get(target.environment_id)
    assert (unlocked.state, unlocked.active_restore_id) == (EnvironmentState.STOPPED, None)
    assert services.backup_catalog.get(source.environment_id, backup_id).in_use_by == ()
    entries, _ = services.activity.page(target.environment_id, limit=1, continuation=None)
    assert (entries[0].action.value, entries[0].outcome.value, entries[0].operation_id) == (
        "restore",
        "FINISHED",
        operation.id,
    )
    # The source's log says where its backup went.
    source_entries, _ = services.activity.page(source.environment_id, limit=1, continuation=None)
    assert (source_entries[0].action.value, source_entries[0].outcome.value) == ("restore", "FINISHED")
    assert source_entries[0].message.startswith(f"Into {target.environment_id}: Restored backup {backup_id}")

    # The pre-restore backup restores the target back to how it was before.
    pre_restore = done.output("pre_restore_backup", "preRestoreSnapshotId")
    assert services.backup_catalog.get(target.environment_id, pre_restore).tier.value == "pre-restore"


def test_the_pre_restore_backup_undoes_a_restore(harness, apps):
    source, target = apps
    services = harness.services
    before_tables = target.table_contents()
    before_files = blobs(target)
    backup_id = harness.backup(source.environment_id, ADA)
    first = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    harness.drain()
    pre_restore = services.restores.get(first.id).output("pre_restore_backup", "preRestoreSnapshotId")
    assert target.table_contents() != before_tables

    undo = services.restores.request(target.environment_id, pre_restore, target.environment_id, ADA)
    harness.drain()
    assert services.restores.get(undo.id).status is OperationStatus.FINISHED
    assert target.table_contents() == before_tables
    assert blobs(target) == before_files


def test_restore_into_the_same_environment(harness, apps):
    source, _ = apps
    services = harness.services
    backup_id = harness.backup(source.environment_id, ADA)
    expected_tables, expected_files = source.table_contents(), dict(source.files)
    late = source.add_document()
    source.add_customers(3, start=500)
    services.environments.stop(source.environment_id, ADA)

    operation = services.restores.request(source.environment_id, backup_id, source.environment_id, ADA)
    harness.drain()
    assert services.restores.get(operation.id).status is OperationStatus.FINISHED
    assert source.table_contents() == expected_tables
    assert late not in blobs(source)
    assert blobs(source) == expected_files
    entries, _ = services.activity.page(source.environment_id, limit=2, continuation=None)
    assert [(entry.action.value, entry.outcome.value) for entry in entries][:1] == [("restore", "FINISHED")]
    assert entries[1].action.value != "restore"  # logged once, not as source and target


def test_refusals(harness, apps, database_factory, postgres_admin_dsn):
    source, target = apps
    services = harness.services
    backup_id = harness.backup(source.environment_id, ADA)
    elsewhere = create_scratch_app(services, database_factory(), postgres_admin_dsn, state="Stopped", documents=0)

    with pytest.raises(Unprocessable) as caught:
        services.restores.request(source.environment_id, backup_id, elsewhere.environment_id, ADA)
    assert caught.value.code == "cross_namespace"

    with pytest.raises(Conflict) as caught:
        services.restores.request(source.environment_id, backup_id, source.environment_id, ADA)  # Running
    assert caught.value.code == "environment_not_stopped"
    assert "stop the environment first" in caught.value.detail

    first = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    with pytest.raises(Conflict) as caught:
        services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    assert caught.value.code == "restore_in_progress"
    for attempt in (
        lambda: services.backups.request(target.environment_id, ADA),
        lambda: services.environments.start(target.environment_id, ADA),
        lambda: reregister(services, target, deploymentPackage="new.mda"),
        lambda: services.backups.delete(source.environment_id, backup_id, ADA),
    ):
        with pytest.raises(Conflict):
            attempt()
    harness.drain()
    assert services.restores.get(first.id).status is OperationStatus.FINISHED
    assert services.environments.get(target.environment_id).state is EnvironmentState.STOPPED


def test_a_model_version_mismatch_is_a_warning(harness, apps):
    source, target = apps
    reregister(harness.services, target, modelVersion="2.0.0")
    backup_id = harness.backup(source.environment_id, ADA)
    operation = harness.services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    assert len(operation.warnings) == 1
    assert "1.0.0" in operation.warnings[0]
    assert "deploy the same model" in operation.warnings[0]
    harness.drain()
    assert harness.services.restores.get(operation.id).status is OperationStatus.FINISHED


def test_a_fault_in_the_database_step_leaves_the_target_exactly_as_before(harness, apps):
    source, target = apps
    services = harness.services
    source.add_customers(2000, start=10_000)  # enough dump that it fails half-way through
    backup_id = harness.backup(source.environment_id, ADA)
    before_schema = schema_text(database_name(target))
    before_tables = target.table_contents()
    before_files = blobs(target)

    def half_then_fail(stream):
        for chunk in stream:
            yield chunk[: len(chunk) // 2]
            raise OSError("the storage connection dropped half-way")

    services.restore_steps.hooks.dump_stream = half_then_fail
    operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    harness.drain()
    failed = services.restores.get(operation.id)
    assert failed.status is OperationStatus.FAILED
    assert failed.error_step == "switch"
    assert failed.step("switch").attempts == services.operations.settings.max_attempts
    assert "rolled back" in failed.error or "dropped" in failed.error

    assert schema_text(database_name(target)) == before_schema
    assert target.table_contents() == before_tables
    assert blobs(target) == before_files  # the source's file documents it had placed are gone again
    unlocked = services.environments.get(target.environment_id)
    assert (unlocked.state, unlocked.active_restore_id) == (EnvironmentState.STOPPED, None)
    entries, _ = services.activity.page(target.environment_id, limit=1, continuation=None)
    assert (entries[0].action.value, entries[0].outcome.value) == ("restore", "FAILED")
    assert "switch" in entries[0].message
    assert "The 6 file documents it had added were removed." in entries[0].message
    source_entries, _ = services.activity.page(source.environment_id, limit=1, continuation=None)
    assert (source_entries[0].action.value, source_entries[0].outcome.value) == ("restore", "FAILED")
    assert source_entries[0].message.startswith(f"Into {target.environment_id}: Restore of backup {backup_id}")
    assert services.backup_catalog.get(source.environment_id, backup_id).in_use_by == ()


def test_a_dump_that_does_not_apply_rolls_back(harness, apps):
    """psql stops at an error half-way through the script: nothing of the restore remains."""
    source, target = apps
    services = harness.services
    with source.connect() as connection:  # created last (pg_dump orders by name), after the other tables
        connection.execute("CREATE TABLE zz_breaks_here (marker integer)")
    backup_id = harness.backup(source.environment_id, ADA)
    before_schema = schema_text(database_name(target))
    before_tables = target.table_contents()
    # Same length, so the archive stays readable; but the type no longer exists.
    services.restore_steps.hooks.dump_stream = lambda stream: (
        chunk.replace(b"marker integer", b"marker intzger") for chunk in stream
    )
    before_files = blobs(target)
    operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    harness.drain()
    failed = services.restores.get(operation.id)
    assert failed.status is OperationStatus.FAILED
    assert failed.error_step == "switch"
    assert "intzger" in failed.error
    assert failed.step("switch").attempts == 1  # not a transient fault: no retry
    assert schema_text(database_name(target)) == before_schema
    assert target.table_contents() == before_tables
    assert blobs(target) == before_files


def test_a_worker_killed_after_the_files_are_placed_resumes_and_finishes(harness, apps):
    source, target = apps
    services = harness.services
    backup_id = harness.backup(source.environment_id, ADA)
    expected_tables, expected_files = source.table_contents(), dict(source.files)
    before = target.table_contents()
    calls = []

    def die_once():
        calls.append(1)
        if len(calls) == 1:
            raise WorkerKilled  # files placed, database loaded, COMMIT not yet sent

    services.restore_steps.hooks.before_commit = die_once
    operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    with pytest.raises(WorkerKilled):
        harness.drain()
    crashed = services.restores.get(operation.id)
    assert crashed.step("pre_restore_backup").status is StepStatus.FINISHED
    assert crashed.step("switch").status is StepStatus.RUNNING
    assert crashed.lease_owner is not None
    assert target.table_contents() == before  # the open transaction died with the worker
    assert set(expected_files) <= set(blobs(target))  # the files were in place

    # Another message for the restore arrives while the dead worker's lease is valid: nothing happens.
    assert services.operations.handle(operation.id) is None
    # Its lease runs out; the claim's watchdog resumes the switch.
    watchdog = next(m.body for m in harness.operation_queue.sent if m.body.get("watch") == crashed.lease_owner)
    operations = operation_catalog(services)
    operations.save(replace(crashed, lease_until=crashed.created_on - timedelta(seconds=1)))
    services.operations.handle(operation.id, watch=watchdog["watch"])
    harness.drain()
    done = services.restores.get(operation.id)
    assert done.status is OperationStatus.FINISHED
    assert done.step("switch").attempts == 2
    assert done.step("switch").output["copied"] == 0  # the files placed before the crash were kept
    assert done.step("pre_restore_backup").attempts == 1
    assert target.table_contents() == expected_tables
    assert blobs(target) == expected_files


def test_a_duplicated_message_does_not_run_a_step_twice(harness, apps):
    source, target = apps
    services = harness.services
    backup_id = harness.backup(source.environment_id, ADA)
    operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    duplicate = dict(harness.operation_queue.messages[0])
    harness.drain()
    services.operations.handle(duplicate["operationId"])
    services.operations.handle(duplicate["operationId"], watch="a-stale-watchdog")
    done = services.restores.get(operation.id)
    assert done.status is OperationStatus.FINISHED
    assert all(step.attempts == 1 for step in done.steps)
    backups = [
        s for s in services.backup_catalog.of_environment(target.environment_id) if s.tier.value == "pre-restore"
    ]
    assert len(backups) == 1
    assert backups[0].status is BackupStatus.FINISHED


def test_a_cancel_at_the_last_moment_before_the_commit_leaves_the_target_exactly_as_before(harness, apps):
    """The hardest window: files placed, the database loaded in its open transaction, COMMIT not sent."""
    source, target = apps
    services = harness.services
    backup_id = harness.backup(source.environment_id, ADA)
    before_schema, before_tables, before_files = (
        schema_text(database_name(target)),
        target.table_contents(),
        blobs(target),
    )
    bob = Principal(id="bob", name="Bob")
    state = {}

    def cancel_now():
        state["placed"] = set(blobs(target)) - set(before_files)
        services.restores.cancel(state["id"], bob)

    services.restore_steps.hooks.before_commit = cancel_now
    operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    state["id"] = operation.id
    harness.drain()
    cancelled = services.restores.get(operation.id)
    assert cancelled.status is OperationStatus.CANCELLED
    assert cancelled.step("switch").status is StepStatus.CANCELLED
    assert state["placed"]  # it had copied file documents the target lacked
    assert schema_text(database_name(target)) == before_schema
    assert target.table_contents() == before_tables
    assert blobs(target) == before_files
    unlocked = services.environments.get(target.environment_id)
    assert (unlocked.state, unlocked.active_restore_id) == (EnvironmentState.STOPPED, None)
    entries, _ = services.activity.page(target.environment_id, limit=1, continuation=None)
    assert (entries[0].outcome.value, entries[0].actor_name) == ("CANCELLED", "Bob")
    assert services.restores.cancel(operation.id, bob).status is OperationStatus.CANCELLED  # idempotent


# The table client sends a request five times (its own four retries) before its caller sees the failure.
TABLE_TRIES = 5


def test_a_catalog_outage_during_the_undo_is_waited_out_and_nothing_stays_locked(
    storage_services, storage_connection_string, database_factory, postgres_admin_dsn
):
    outage = StorageOutage()
    harness = Harness(storage_connection_string, wrap_transport=outage.wrap)
    services = harness.services
    source, target = source_and_target(services, database_factory, postgres_admin_dsn)
    backup_id = harness.backup(source.environment_id, ADA)
    backup = services.backup_catalog.get(source.environment_id, backup_id)
    gone = next(read_file_list(services.stores.backups, backup))
    services.stores.content.delete(gone.object)  # the switch cannot place it: the restore fails
    before_tables, before_files = target.table_contents(), blobs(target)

    operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    # The switch fails on the missing file document; then the catalog refuses the undo's writes, longer than the table
    # client's own retries: first the target's unlock, then, on the undo's next attempt, the backup's release.
    outage.fail("table", Tables.ENVIRONMENTS, times=TABLE_TRIES, url_contains=target.environment_id)
    outage.fail("table", Tables.BACKUPS, times=TABLE_TRIES, url_contains=backup_id)
    harness.drain()

    assert outage.left() == 0  # both outages were met
    done = services.restores.get(operation.id)
    assert done.status is OperationStatus.FAILED
    assert done.error_step == "switch"
    undo = done.steps[-1]
    assert (undo.status, undo.attempts) == (StepStatus.FINISHED, 3)  # two met the outage, the third got through
    unlocked = services.environments.get(target.environment_id)
    assert (unlocked.state, unlocked.active_restore_id) == (EnvironmentState.STOPPED, None)
    assert services.backup_catalog.get(source.environment_id, backup_id).in_use_by == ()
    assert target.table_contents() == before_tables
    assert blobs(target) == before_files
    entries, _ = services.activity.page(target.environment_id, limit=10, continuation=None)
    restores = [(entry.action.value, entry.outcome.value) for entry in entries if entry.operation_id == operation.id]
    assert restores == [("restore", "FAILED")]  # logged once, although the undo ran three times


def _drop_the_load_connection(dsn: str, database: str, dropped: list[int], stop: threading.Event) -> None:
    """Terminate the connection loading the target (psql's COPY … FROM stdin) once it is under way."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        while not stop.is_set():
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                "AND query ILIKE 'COPY %%FROM stdin%%' AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
            if rows:
                dropped.append(len(rows))
                return
            time.sleep(0.01)


def test_a_database_connection_dropped_during_the_load_is_retried_and_the_target_ends_exactly_the_backup(
    harness, apps, postgres_admin_dsn
):
    source, target = apps
    services = harness.services
    with source.connect() as connection:  # enough rows that the load is seen under way
        connection.execute("CREATE TABLE bulk AS SELECT n, md5(n::text) AS note FROM generate_series(1, 300000) n")
    backup_id = harness.backup(source.environment_id, ADA)
    expected_tables, expected_files = source.table_contents(), dict(source.files)
    source.add_document()  # the source moves on; the target must end as the backup, not as the source

    operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    dropped: list[int] = []
    stop = threading.Event()
    dropper = threading.Thread(
        target=_drop_the_load_connection, args=(postgres_admin_dsn, database_name(target), dropped, stop)
    )
    dropper.start()
    try:
        harness.drain()
    finally:
        stop.set()
        dropper.join()

    assert dropped, "the load's connection was never seen"
    done = services.restores.get(operation.id)
    assert done.status is OperationStatus.FINISHED, done.error
    assert done.step("switch").attempts == 2  # the load that lost its connection, and the one that finished
    assert target.table_contents() == expected_tables
    assert blobs(target) == expected_files
    assert services.environments.get(target.environment_id).state is EnvironmentState.STOPPED
