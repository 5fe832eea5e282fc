"""The pre-flight of a restore, against real Azurite and PostgreSQL: a dry run answers the plan and changes
nothing; a real restore refuses each failing condition before any side effect (the target's state, its
backups and the activity log are as they were)."""

import pytest

from shared.domain.access import Principal
from shared.domain.environments import EnvironmentState
from shared.errors import AppError, Conflict, Unprocessable
from tests.support.appdata import create_scratch_app, source_and_target
from tests.support.dumps import replace_dump, stored_dump
from tests.support.restoring import Harness

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")


@pytest.fixture
def harness(storage_services, storage_connection_string):
    return Harness(storage_connection_string)


@pytest.fixture
def apps(harness, database_factory, postgres_admin_dsn):
    return source_and_target(harness.services, database_factory, postgres_admin_dsn, documents=3, target_documents=1)


def side_effects(services, environment_id):
    """What a refused restore must leave as it was."""
    environment = services.environments.get(environment_id)
    backups = [backup.id for backup in services.backup_catalog.of_environment(environment_id)]
    activity = [entry.id for entry in services.activity.page(environment_id, limit=50, continuation=None)[0]]
    return environment.state, environment.active_restore_id, backups, activity


def refused(services, source, backup_id, target_id, error_type, code, check):
    before = side_effects(services, target_id)
    plan = services.restores.plan(source.environment_id, backup_id, target_id, ADA)
    assert plan.outcome.value == "fail"
    assert next(failed.name for failed in plan.failed) == check
    assert side_effects(services, target_id) == before  # a dry run changes nothing
    with pytest.raises(error_type) as refusal:
        services.restores.request(source.environment_id, backup_id, target_id, ADA)
    assert refusal.value.code == code
    assert refusal.value.extensions["check"] == check
    assert side_effects(services, target_id) == before  # nor does a refused restore
    return plan, refusal.value


def test_a_dry_run_answers_the_plan_with_sizes_and_changes_nothing(harness, apps):
    source, target = apps
    services = harness.services
    backup_id = harness.backup(source.environment_id, ADA)
    before = side_effects(services, target.environment_id), target.table_contents(), target.stored_files()
    plan = services.restores.plan(source.environment_id, backup_id, target.environment_id, ADA)
    assert plan.outcome.value == "pass"
    assert [check.name for check in plan.checks] == [
        "backup",
        "namespace",
        "target_state",
        "model_version",
        "postgres_version",
        "missing_files",
        "verification",
    ]
    assert {check.status.value for check in plan.checks} == {"pass"}
    backup = services.backup_catalog.get(source.environment_id, backup_id)
    assert plan.sizes.dump_size == backup.dump_size
    assert plan.sizes.database_size == backup.database_size
    assert (plan.sizes.files_to_copy, plan.sizes.bytes_to_copy) == (3, sum(len(c) for c in source.files.values()))
    assert plan.estimated_seconds is None  # no drill has measured this environment yet
    assert not plan.stop_needed
    assert (side_effects(services, target.environment_id), target.table_contents(), target.stored_files()) == before


def test_a_running_target_is_refused_before_anything_happens_and_stop_is_named(harness, apps):
    source, target = apps
    services = harness.services
    backup_id = harness.backup(source.environment_id, ADA)
    services.environments.start(target.environment_id, ADA)
    plan, refusal = refused(
        services, source, backup_id, target.environment_id, Conflict, "environment_not_stopped", "target_state"
    )
    assert plan.stop_needed
    assert "Stop would be needed" in refusal.detail
    assert services.environments.get(target.environment_id).state is EnvironmentState.RUNNING


def test_a_restore_into_another_namespace_is_refused_up_front(harness, apps, database_factory, postgres_admin_dsn):
    source, _ = apps
    services = harness.services
    elsewhere = create_scratch_app(services, database_factory(), postgres_admin_dsn, state="Stopped", documents=0)
    backup_id = harness.backup(source.environment_id, ADA)
    refused(services, source, backup_id, elsewhere.environment_id, Unprocessable, "cross_namespace", "namespace")


def test_a_dump_no_installed_pg_restore_reads_is_refused_up_front(harness, apps):
    source, target = apps
    services = harness.services
    backup_id = harness.backup(source.environment_id, ADA)
    backup = services.backup_catalog.get(source.environment_id, backup_id)
    replace_dump(services.stores, backup, b"PGDMP\xff\xff\xff but no archive any pg_restore reads")
    _plan, refusal = refused(
        services, source, backup_id, target.environment_id, Unprocessable, "dump_unreadable", "postgres_version"
    )
    assert "No installed pg_restore reads" in refusal.detail


def test_a_backup_that_is_not_finished_is_refused_up_front(harness, apps):
    source, target = apps
    services = harness.services
    processing = services.backups.request(source.environment_id, ADA)  # recorded, not yet made
    refused(services, source, processing.id, target.environment_id, AppError, "backup_not_finished", "backup")
    harness.drain()


def test_a_dump_from_a_newer_postgresql_major_than_the_target_server_is_refused_up_front(harness, apps):
    source, target = apps
    services = harness.services
    backup_id = harness.backup(source.environment_id, ADA)
    backup = services.backup_catalog.get(source.environment_id, backup_id)
    dump = stored_dump(services.stores, backup)
    # The archive's header names the server it was dumped from ("15.8"): say a newer major, as a dump of a
    # PostgreSQL 99 server would (same length, so the archive stays readable).
    major = str(backup.server_version // 10000).encode()
    minor = str(backup.server_version % 10000).encode()
    version = major + b"." + minor
    assert dump.count(version) >= 1
    newer = b"9" * len(major) + b"." + minor
    replace_dump(services.stores, backup, dump.replace(version, newer, 1))
    _, refusal = refused(
        services,
        source,
        backup_id,
        target.environment_id,
        Unprocessable,
        "postgres_version_unsupported",
        "postgres_version",
    )
    assert "a dump does not load into an older major version" in refusal.detail
