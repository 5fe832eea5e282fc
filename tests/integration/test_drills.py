"""Restore drills against real Azurite and PostgreSQL: a good backup passes; each check fails on a backup
damaged in that one way and names it; the scratch database is gone afterwards, whatever happened; the
environment's own database and files are never touched."""

import json

import psycopg
import pytest

from shared.backups.layout import ROWS, backup_folder, read_file_list
from shared.contracts.environments import EnvironmentBody, EnvironmentView
from shared.domain.access import Principal
from shared.domain.operations import OperationStatus
from shared.domain.verification import CheckStatus, VerificationStatus
from shared.drills.steps import scratch_database
from tests.support.appdata import create_scratch_app, ensure_role_without_createdb
from tests.support.dumps import damage_chunk
from tests.support.restoring import Harness

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")


@pytest.fixture
def harness(storage_services, storage_connection_string):
    return Harness(storage_connection_string)


@pytest.fixture
def app(harness, database_factory, postgres_admin_dsn):
    return create_scratch_app(harness.services, database_factory(), postgres_admin_dsn, documents=4, customers=25)


def scratch_exists(admin_dsn: str, operation_id: str) -> bool:
    with psycopg.connect(admin_dsn) as connection:
        row = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (scratch_database(operation_id),)
        ).fetchone()
    return row is not None


def reregister(services, app, **changes):
    view = EnvironmentView.of(services.environments.get(app.environment_id)).to_json()
    keys = ("namespace", "appName", "displayName", "state", "database", "files", "modelVersion", "deploymentPackage")
    body = {**{key: view[key] for key in keys}, **changes}
    services.environments.put(app.environment_id, EnvironmentBody.model_validate(body).to_registration(), ADA)


def drill(harness, app, backup_id):
    operation = harness.services.drills.request(app.environment_id, backup_id, ADA)
    harness.drain()
    done = harness.services.drills.get(operation.id)
    backup = harness.services.backup_catalog.get(app.environment_id, backup_id)
    return done, backup


def checks_of(backup) -> dict[str, CheckStatus]:
    return {check.name: check.status for check in backup.verification.checks}


def test_a_drill_of_a_good_backup_passes_and_leaves_nothing_behind(harness, app, postgres_admin_dsn):
    services = harness.services
    reregister(
        services,
        app,
        verificationQueries=[{"name": "customers", "query": 'SELECT count(*) = 25 FROM "sales$customer"'}],
    )
    backup_id = harness.backup(app.environment_id, ADA)
    tables, files = app.table_contents(), app.stored_files()

    done, backup = drill(harness, app, backup_id)
    assert done.status is OperationStatus.FINISHED, done.error
    verification = backup.verification
    assert verification.status is VerificationStatus.PASSED
    assert checks_of(backup) == {
        "checksums": CheckStatus.PASSED,
        "load": CheckStatus.PASSED,
        "row_counts": CheckStatus.PASSED,
        "file_references": CheckStatus.PASSED,
        "assertions": CheckStatus.PASSED,
    }
    assert verification.restore_seconds > 0
    assert verification.verified_on is not None
    assert backup.in_use_by == ()
    assert not scratch_exists(postgres_admin_dsn, done.id)
    # The environment's own database and files are as they were; it shows its measured restore time.
    assert app.table_contents() == tables
    assert app.stored_files() == files
    environment = services.environments.get(app.environment_id)
    assert environment.last_drill.backup_id == backup_id
    assert environment.last_drill.restore_seconds == verification.restore_seconds
    entries, _ = services.activity.page(app.environment_id, limit=1, continuation=None)
    assert (entries[0].action.value, entries[0].outcome.value) == ("verify", "FINISHED")
    # A dry-run restore now estimates its duration from that drill.
    plan = services.restores.plan(app.environment_id, backup_id, app.environment_id, ADA)
    assert plan.estimated_seconds is not None
    assert backup_id in plan.estimate_basis


def damage_dump(services, backup):
    return damage_chunk(services.stores, backup)


def remove_a_content_object(services, backup):
    entry = next(iter(read_file_list(services.stores.backups, backup)))
    services.stores.content.delete(entry.object)
    return entry.uuid


def change_a_row_count(services, backup):
    name = backup_folder(backup.namespace, backup.environment_id, backup.id) + ROWS
    document = json.loads(services.stores.backups.read_bytes(name))
    document["tables"]['public."sales$customer"'] += 1
    services.stores.backups.put(name, json.dumps(document).encode(), overwrite=True)


@pytest.mark.parametrize(
    ("damage", "failed_check", "named"),
    [
        ("dump", "checksums", "of the database dump is damaged"),
        ("content", "checksums", "is missing"),
        ("rows", "row_counts", 'public."sales$customer": 25 rows loaded, 26 recorded'),
        ("assertion", "assertions", "never-true: returned false"),
    ],
)
def test_each_check_fails_on_a_backup_damaged_in_that_one_way(
    harness, app, postgres_admin_dsn, damage, failed_check, named
):
    services = harness.services
    if damage == "assertion":
        reregister(services, app, verificationQueries=[{"name": "never-true", "query": "SELECT false"}])
    backup_id = harness.backup(app.environment_id, ADA)
    backup = services.backup_catalog.get(app.environment_id, backup_id)
    if damage == "dump":
        named = f"(in {damage_dump(services, backup)} at byte "  # the chunk's pack named, and where in it
    elif damage == "content":
        named = f"the content object of file document {remove_a_content_object(services, backup)} is missing"
    elif damage == "rows":
        change_a_row_count(services, backup)

    done, backup = drill(harness, app, backup_id)
    assert done.status is OperationStatus.FAILED
    assert backup.verification.status is VerificationStatus.FAILED
    checks = {check.name: check for check in backup.verification.checks}
    assert checks[failed_check].status is CheckStatus.FAILED
    assert named in checks[failed_check].detail
    assert failed_check in done.error
    if damage != "dump":  # a flipped byte may also break the load; every other damage is that one check alone
        assert [name for name, check in checks.items() if check.status is CheckStatus.FAILED] == [failed_check]
    assert not scratch_exists(postgres_admin_dsn, done.id)
    entries, _ = services.activity.page(app.environment_id, limit=1, continuation=None)
    assert (entries[0].action.value, entries[0].outcome.value) == ("verify", "FAILED")
    assert backup.in_use_by == ()


def test_a_drill_cancelled_while_it_loads_drops_its_scratch_database(harness, app, postgres_admin_dsn):
    services = harness.services
    backup_id = harness.backup(app.environment_id, ADA)
    before = services.backup_catalog.get(app.environment_id, backup_id).verification
    seen = {}

    def cancel_while_loading(chunks):
        for number, chunk in enumerate(chunks):
            if number == 0:
                seen["existed"] = scratch_exists(postgres_admin_dsn, seen["id"])
                services.drills.cancel(seen["id"], ADA)
            yield chunk

    services.drill_steps.hooks.dump_stream = cancel_while_loading
    operation = services.drills.request(app.environment_id, backup_id, ADA)
    seen["id"] = operation.id
    harness.drain()
    done = services.drills.get(operation.id)
    assert done.status is OperationStatus.CANCELLED
    assert seen["existed"]
    assert not scratch_exists(postgres_admin_dsn, operation.id)
    backup = services.backup_catalog.get(app.environment_id, backup_id)
    assert backup.verification == before  # a cancelled drill says nothing about the backup
    assert backup.in_use_by == ()
    entries, _ = services.activity.page(app.environment_id, limit=1, continuation=None)
    assert (entries[0].action.value, entries[0].outcome.value) == ("verify", "CANCELLED")


def test_a_server_that_refuses_create_database_fails_the_drill_and_names_the_setting(
    harness, app, postgres_admin_dsn, storage_connection_string
):
    services = harness.services
    backup_id = harness.backup(app.environment_id, ADA)
    role = ensure_role_without_createdb(postgres_admin_dsn)
    database = {**EnvironmentView.of(app.environment).to_json()["database"], "user": role}
    reregister(services, app, database=database)
    done, backup = drill(harness, app, backup_id)
    assert done.status is OperationStatus.FAILED
    assert "refused to create the scratch database" in done.error
    assert "APPBACKUPS_VERIFICATION_SERVERS" in done.error
    assert backup.verification.status is VerificationStatus.FAILED

    # With a verification server for the namespace, the same backup passes there.
    admin = psycopg.conninfo.conninfo_to_dict(postgres_admin_dsn)
    servers = {app.namespace: {"host": admin["host"], "port": int(admin["port"]), "user": admin["user"]}}
    verifying = Harness(storage_connection_string, APPBACKUPS_VERIFICATION_SERVERS=json.dumps(servers))
    done, backup = drill(verifying, app, backup_id)
    assert done.status is OperationStatus.FINISHED, done.error
    assert backup.verification.status is VerificationStatus.PASSED
    assert "verification server" in {check.name: check for check in backup.verification.checks}["load"].detail
    assert not scratch_exists(postgres_admin_dsn, done.id)


def test_a_backup_with_missing_file_content_verifies_with_a_warning(harness, app, postgres_admin_dsn):
    gone = app.add_document()
    app.container.delete_blob(app.prefix + gone)
    backup_id = harness.backup(app.environment_id, ADA)
    done, backup = drill(harness, app, backup_id)
    assert done.status is OperationStatus.FINISHED, done.error
    assert backup.verification.status is VerificationStatus.PASSED
    assert checks_of(backup)["file_references"] is CheckStatus.WARNING
