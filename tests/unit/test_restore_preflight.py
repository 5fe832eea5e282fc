"""A restore's pre-flight on the twins: each check passes on a restore that can go ahead and fails (or warns)
on the one condition it looks at, naming it; a dry run changes nothing, and a real restore refuses with the
first failed check before anything happens (the counterpart of tests/integration/test_restore_preflight.py)."""

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.adapters.errors import StorageFault
from shared.domain.access import Permission, Principal
from shared.domain.backups import BackupStatus
from shared.domain.environments import EnvironmentState, VerificationQuery
from shared.domain.restores import Verdict
from shared.domain.verification import LastDrill, VerificationStatus
from shared.errors import AppError, Conflict, Forbidden, Unprocessable
from shared.restores.preflight import Preflight
from tests.support.core import CoreWorld
from tests.support.dumps import damage_chunk, replace_dump, stored_dump

ADA = Principal(id="ada", name="Ada")
CHECKS = ["backup", "namespace", "target_state", "model_version", "postgres_version", "missing_files", "verification"]
RESTORER = frozenset({Permission.MANAGE_BACKUPS, Permission.STOP_APPS})


@pytest.fixture
def world():
    return CoreWorld()


@pytest.fixture
def apps(world):
    source = world.app(documents=3, customers=3)
    target = world.app(namespace=source.namespace, state="Stopped", documents=1, customers=1)
    return source, target


@pytest.fixture
def backup(world, apps):
    source, _ = apps
    return backup_of(world, source)


def backup_of(world, app):
    backup = world.services.backups.request(app.environment_id, ADA)
    world.settle(str(backup.operation_id))
    return world.services.backup_catalog.get(app.environment_id, backup.id)


def plan(world, backup, target, **options):
    return world.services.restores.plan(backup.environment_id, backup.id, target.environment_id, ADA, **options)


def check(plan, name):
    return next(found for found in plan.checks if found.name == name)


def side_effects(world, target):
    """What a dry run, and a refused restore, leave as they were."""
    environment = world.services.environments.get(target.environment_id)
    backups = [backup.id for backup in world.services.backup_catalog.of_environment(target.environment_id)]
    activity, _ = world.services.activity.page(target.environment_id, limit=50, continuation=None)
    return environment.state, environment.active_restore_id, backups, [entry.id for entry in activity]


def refused(world, backup, target, error_type, code, name):
    """A real restore is refused with the check ``name``, and nothing has changed."""
    before = side_effects(world, target), target.contents(), target.stored_files()
    with pytest.raises(error_type) as refusal:
        world.services.restores.request(backup.environment_id, backup.id, target.environment_id, ADA)
    assert (refusal.value.code, refusal.value.extensions["check"]) == (code, name)
    assert (side_effects(world, target), target.contents(), target.stored_files()) == before
    return refusal.value


def update_environment(world, environment_id, **changes):
    world.services.environment_catalog.update(environment_id, lambda environment: replace(environment, **changes))


# -- a restore that can go ahead ------------------------------------------------------------------------


def test_a_restore_that_can_go_ahead_passes_every_check_and_the_dry_run_changes_nothing(world, apps, backup):
    source, target = apps
    before = side_effects(world, target), target.contents(), target.stored_files()
    found = plan(world, backup, target, permissions=lambda namespace: RESTORER)
    assert [item.name for item in found.checks] == ["permissions", *CHECKS]
    assert {item.name: item.status for item in found.checks} == dict.fromkeys(["permissions", *CHECKS], Verdict.PASS)
    assert found.outcome is Verdict.PASS
    assert (found.warnings, found.stop_needed) == ((), False)
    assert check(found, "postgres_version").reason == (
        f"Dumped from PostgreSQL 15.0; {target.environment_id}'s server runs 15.0."
    )
    assert check(found, "verification").reason == "No restore drill has tested this backup yet."
    assert (found.sizes.files_to_copy, found.sizes.bytes_to_copy) == (3, sum(map(len, source.files.values())))
    assert found.estimated_seconds is None
    assert found.estimate_basis.startswith("No restore drill of this environment")
    assert (side_effects(world, target), target.contents(), target.stored_files()) == before


def test_without_the_callers_permissions_the_plan_has_no_permissions_check(world, apps, backup):
    _, target = apps
    assert [item.name for item in plan(world, backup, target).checks] == CHECKS


# -- permissions ----------------------------------------------------------------------------------------


def test_a_caller_without_stop_apps_fails_the_permissions_check_naming_what_is_missing(world, apps, backup):
    _, target = apps
    found = plan(world, backup, target, permissions=lambda namespace: frozenset({Permission.MANAGE_BACKUPS}))
    permissions = check(found, "permissions")
    assert permissions.status is Verdict.FAIL
    assert (
        permissions.reason
        == f"A restore needs ManageAppsBackups and StopApps; Ada lacks StopApps in {target.namespace}."
    )
    assert isinstance(permissions.refusal, Forbidden)
    assert permissions.refusal.code == "permission_missing"
    assert found.outcome is Verdict.FAIL
    before = side_effects(world, target)
    with pytest.raises(Forbidden) as refusal:
        world.services.restores.request(
            backup.environment_id,
            backup.id,
            target.environment_id,
            ADA,
            permissions=lambda namespace: frozenset({Permission.MANAGE_BACKUPS}),
        )
    assert refusal.value.extensions["check"] == "permissions"
    assert side_effects(world, target) == before


# -- the backup -----------------------------------------------------------------------------------------


def test_a_backup_that_is_not_finished_fails_and_its_dump_is_not_read(world, apps):
    source, target = apps
    processing = world.services.backups.request(source.environment_id, ADA)  # recorded, not yet made
    found = plan(world, processing, target)
    assert check(found, "backup").status is Verdict.FAIL
    assert check(found, "backup").reason == (
        f"Backup {processing.id} is {processing.status.value}; only a Finished backup can be restored."
    )
    assert "postgres_version" not in [item.name for item in found.checks]
    assert found.sizes.files_to_copy is None  # nothing to size without a finished backup
    refused(world, processing, target, AppError, "backup_not_finished", "backup")
    assert world.services.backup_catalog.get(source.environment_id, processing.id).status is not BackupStatus.FINISHED


# -- the namespace --------------------------------------------------------------------------------------


def test_a_target_in_another_namespace_fails(world, apps, backup):
    elsewhere = world.app(namespace="elsewhere", state="Stopped")
    found = plan(world, backup, elsewhere)
    assert check(found, "namespace").status is Verdict.FAIL
    assert "backups are restored only within their own namespace" in check(found, "namespace").reason
    assert found.sizes.files_to_copy is None  # not sized across namespaces
    refused(world, backup, elsewhere, Unprocessable, "cross_namespace", "namespace")


# -- the target's state ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "stop_needed", "detail"),
    [
        ("Running", True, "is Running: stop the environment first, then restore. (Stop would be needed.)"),
        ("Starting", False, "is Starting: stop the environment first, then restore."),
    ],
)
def test_a_target_that_is_not_stopped_fails_and_says_whether_stop_is_needed(
    world, apps, backup, state, stop_needed, detail
):
    source, _ = apps
    target = world.app(namespace=source.namespace, state=state)
    found = plan(world, backup, target)
    assert check(found, "target_state").status is Verdict.FAIL
    assert check(found, "target_state").reason == f"Environment {target.environment_id} {detail}"
    assert found.stop_needed is stop_needed
    refused(world, backup, target, Conflict, "environment_not_stopped", "target_state")
    assert world.services.environments.get(target.environment_id).state is EnvironmentState(state)


def test_a_target_being_restored_fails(world, apps, backup):
    _, target = apps
    first = world.services.restores.request(backup.environment_id, backup.id, target.environment_id, ADA)
    found = plan(world, backup, target)
    assert check(found, "target_state").status is Verdict.FAIL
    assert "is being restored" in check(found, "target_state").reason
    with pytest.raises(Conflict) as refusal:
        world.services.restores.request(backup.environment_id, backup.id, target.environment_id, ADA)
    assert (refusal.value.code, refusal.value.extensions["check"]) == ("restore_in_progress", "target_state")
    assert world.services.environments.get(target.environment_id).active_restore_id == first.id


def test_a_deregistered_target_fails(world, apps, backup):
    _, target = apps
    world.services.environments.deregister(target.environment_id, ADA, world.services.backup_catalog)
    found = plan(world, backup, target)
    assert check(found, "target_state").status is Verdict.FAIL
    assert f"Environment {target.environment_id} was deregistered on" in check(found, "target_state").reason
    assert check(found, "target_state").refusal.code == "environment_deregistered"


# -- the model version ----------------------------------------------------------------------------------


def test_another_model_version_on_the_target_warns_and_the_restore_goes_ahead_with_the_warning(world, apps, backup):
    _, target = apps
    update_environment(world, target.environment_id, model_version="2.0.0")
    found = plan(world, backup, target)
    model = check(found, "model_version")
    assert model.status is Verdict.WARN
    assert model.reason == (
        f"The backup was made with model version 1.0.0 and {target.environment_id} runs 2.0.0: deploy the same "
        f"model (1.0.0) to {target.environment_id} after the restore."
    )
    assert (found.outcome, found.warnings, found.failed) == (Verdict.WARN, (model.reason,), ())
    operation = world.services.restores.request(backup.environment_id, backup.id, target.environment_id, ADA)
    assert model.reason in operation.warnings


# -- the PostgreSQL versions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server_version", "verdict"),
    [(140000, Verdict.FAIL), (150000, Verdict.PASS), (150007, Verdict.PASS), (160002, Verdict.PASS)],
)
def test_a_dump_from_a_newer_major_than_the_target_server_fails(world, apps, backup, server_version, verdict):
    _, target = apps
    target.database.server_version = server_version
    postgres = check(plan(world, backup, target), "postgres_version")
    assert postgres.status is verdict
    if verdict is Verdict.FAIL:
        assert postgres.reason == (
            f"The dump was made from PostgreSQL 15.0 and {target.environment_id}'s server runs 14.0: a dump does "
            "not load into an older major version."
        )
        refused(world, backup, target, Unprocessable, "postgres_version_unsupported", "postgres_version")


def test_a_dump_no_pg_restore_reads_fails(world, apps, backup):
    _, target = apps
    replace_dump(world.services.stores, backup, b"PGDMP but no archive any pg_restore reads")
    postgres = check(plan(world, backup, target), "postgres_version")
    assert postgres.status is Verdict.FAIL
    assert postgres.reason.startswith("No installed pg_restore reads the backup's dump: ")
    refused(world, backup, target, Unprocessable, "dump_unreadable", "postgres_version")


def test_a_damaged_dump_fails_naming_the_chunk(world, apps, backup):
    _, target = apps
    damaged = damage_chunk(world.services.stores, backup)
    postgres = check(plan(world, backup, target), "postgres_version")
    assert postgres.status is Verdict.FAIL
    assert postgres.reason.startswith("The backup's dump is damaged: ")
    assert damaged in postgres.reason
    refused(world, backup, target, Unprocessable, "dump_unreadable", "postgres_version")


def test_a_target_server_that_cannot_be_reached_warns(world, apps, backup):
    _, target = apps
    gone = replace(world.services.environments.get(target.environment_id).database, database="gone")
    update_environment(world, target.environment_id, database=gone)
    found = plan(world, backup, target)
    postgres = check(found, "postgres_version")
    assert postgres.status is Verdict.WARN
    assert postgres.reason.startswith(f"The database server of {target.environment_id} cannot be reached just now")
    assert postgres.reason in found.warnings


class Unreachable:
    """A blob store whose reads fail as an unreachable account's do; everything else is the store's."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def read_bytes(self, name):
        raise StorageFault("connection reset")

    def read_range(self, name, offset, length):
        raise StorageFault("connection reset")

    def read_chunks(self, name, *, etag=None):
        raise StorageFault("connection reset")


def test_a_dump_that_cannot_be_read_just_now_warns_and_is_no_verdict_on_the_dump(world, apps, backup):
    _, target = apps
    stores = world.services.stores
    preflight = Preflight(
        environments=world.services.environment_catalog,
        backups=world.services.backups,
        databases=world.databases,
        backup_store=stores.backups,
        content_store=Unreachable(stores.content),  # where the dump's chunks are
        file_store=stores.file_store,
    )
    found = preflight.plan(backup.environment_id, backup.id, target.environment_id, ADA, sizes=False)
    postgres = check(found, "postgres_version")
    assert postgres.status is Verdict.WARN
    assert postgres.reason.startswith("The backup's dump could not be read just now: ")
    assert "connection reset" in postgres.reason
    assert found.failed == ()


def test_a_dump_that_does_not_say_its_postgresql_warns(world, apps, backup):
    _, target = apps
    dump = stored_dump(world.services.stores, backup)
    start = dump.index(b"{")  # the twin's archive: a header line, then JSON naming the server's version
    document = json.loads(dump[start:])
    assert document["serverVersion"] == 150000
    replace_dump(world.services.stores, backup, dump[:start] + json.dumps({**document, "serverVersion": 0}).encode())
    world.services.backup_catalog.update(
        backup.environment_id, backup.id, lambda row: replace(row, server_version=None)
    )
    postgres = check(plan(world, backup, target), "postgres_version")
    assert postgres.status is Verdict.WARN
    assert postgres.reason == (
        f"The dump does not say which PostgreSQL it came from; {target.environment_id} runs 15.0."
    )


# -- file documents the backup had no content for ---------------------------------------------------------


def test_a_backup_missing_file_content_warns_with_the_count(world, apps):
    source, target = apps
    source.add_document(upload=False)  # a row whose content never reached the store
    backup = backup_of(world, source)
    assert backup.status is BackupStatus.FINISHED
    found = plan(world, backup, target)
    missing = check(found, "missing_files")
    assert missing.status is Verdict.WARN
    assert missing.reason.startswith("1 file documents had no content when the backup was made")
    assert (found.outcome, found.failed) == (Verdict.WARN, ())


def test_a_backup_with_all_file_content_passes_the_missing_files_check(world, apps, backup):
    _, target = apps
    missing = check(plan(world, backup, target), "missing_files")
    assert (missing.status, missing.reason) == (Verdict.PASS, "The backup has the content of every file document.")


# -- the backup's own restore drill ------------------------------------------------------------------------


def drill(world, backup, *, settle=True):
    operation = world.services.drills.request(backup.environment_id, backup.id, ADA)
    if settle:
        world.settle(operation.id)
    return world.services.backup_catalog.get(backup.environment_id, backup.id)


def test_a_backup_a_drill_verified_passes_the_verification_check(world, apps, backup):
    _, target = apps
    drilled = drill(world, backup)
    assert drilled.verification.status is VerificationStatus.PASSED
    verification = check(plan(world, backup, target), "verification")
    assert verification.status is Verdict.PASS
    assert verification.reason == (
        f"Verified by a restore drill on {drilled.verification.verified_on:%Y-%m-%d %H:%M} UTC."
    )


def test_a_backup_whose_drill_failed_warns_naming_the_failed_checks(world, apps, backup):
    source, target = apps
    query = VerificationQuery("four customers", 'SELECT count(*) = 4 FROM public."sales$customer"')
    update_environment(world, source.environment_id, verification_queries=(query,))
    drilled = drill(world, backup)
    assert drilled.verification.status is VerificationStatus.FAILED
    found = plan(world, backup, target)
    verification = check(found, "verification")
    assert verification.status is Verdict.WARN
    assert verification.reason == (
        f"The restore drill of this backup failed on {drilled.verification.verified_on:%Y-%m-%d %H:%M} UTC: assertions."
    )
    assert verification.reason in found.warnings


def test_a_backup_being_drilled_passes_the_verification_check_and_says_so(world, apps, backup):
    _, target = apps
    drilled = drill(world, backup, settle=False)
    assert drilled.verification.status is VerificationStatus.RUNNING
    verification = check(plan(world, backup, target), "verification")
    assert (verification.status, verification.reason) == (Verdict.PASS, "A restore drill of this backup is running.")


# -- what a dry run adds: sizes and the estimate --------------------------------------------------------


def test_file_documents_the_target_has_with_the_same_content_are_not_counted_to_copy(world, apps, backup):
    source, target = apps
    (same, same_content), (changed, _), *rest = source.files.items()
    target.store.put(target.prefix + same, same_content, overwrite=True)
    target.store.put(target.prefix + changed, b"other content", overwrite=True)
    sizes = plan(world, backup, target).sizes
    to_copy = [changed, *(file_uuid for file_uuid, _ in rest)]
    assert sizes.files_to_copy == len(to_copy) == 2
    assert sizes.bytes_to_copy == sum(len(source.files[file_uuid]) for file_uuid in to_copy)
    assert sizes.file_count == 3


def test_the_estimate_scales_the_last_drills_load_time_by_the_dump_size(world, apps, backup):
    _, target = apps
    drilled_on = world.clock.now - timedelta(days=1)
    last = LastDrill("earlier", VerificationStatus.PASSED, drilled_on, 12.0, backup.dump_size * 2, None)
    update_environment(world, backup.environment_id, last_drill=last)
    found = plan(world, backup, target)
    assert found.estimated_seconds == 6.0
    assert found.estimate_basis.startswith(
        f"The drill of backup earlier on {drilled_on:%Y-%m-%d %H:%M} UTC loaded {backup.dump_size * 2} bytes"
    )
    assert check(found, "verification").status is Verdict.PASS  # the estimate is no verdict


# -- a real restore ---------------------------------------------------------------------------------------


def test_a_real_restore_refuses_with_the_first_failed_check_and_names_every_failed_one(world, apps, backup):
    elsewhere = world.app(namespace="elsewhere", state="Running")
    found = plan(world, backup, elsewhere)
    assert [item.name for item in found.failed] == ["namespace", "target_state"]
    refusal = refused(world, backup, elsewhere, Unprocessable, "cross_namespace", "namespace")
    assert [item["name"] for item in refusal.extensions["failedChecks"]] == ["namespace", "target_state"]
