"""The restore drill on the twins: a good backup passes every check and leaves no scratch database; a
backup damaged in one way fails the check that looks at that and names it; a cancel drops the scratch
database; the environment's own database and files are never written — fast, with no Azurite, no
PostgreSQL and no sleeps (the counterpart of tests/integration/test_drills.py)."""

import hashlib
import json
from dataclasses import replace

import pytest

from shared.adapters.postgres.snapshot import ALL_FILE_DOCUMENTS_QUERY
from shared.backups.layout import ROWS, backup_folder, read_file_list
from shared.domain.access import Principal
from shared.domain.environments import VerificationQuery
from shared.domain.operations import OperationStatus
from shared.domain.verification import CheckStatus, LastDrill, VerificationStatus
from shared.drills.steps import scratch_database
from tests.support.core import CUSTOMERS, CoreWorld
from tests.support.dumps import damage_chunk, replace_dump, stored_dump

ADA = Principal(id="ada", name="Ada")
BOB = Principal(id="bob", name="Bob")

# True on the backup's data (3 customers); the twin runs count queries like this one.
THREE_CUSTOMERS = 'SELECT count(*) = 3 FROM public."sales$customer"'
ALL_CHECKS = ("checksums", "load", "row_counts", "file_references", "assertions")


@pytest.fixture
def world():
    return CoreWorld()


@pytest.fixture
def app(world):
    return world.app(documents=3, customers=3)


def backup_of(world, app):
    backup = world.services.backups.request(app.environment_id, ADA)
    world.settle(str(backup.operation_id))
    return world.services.backup_catalog.get(app.environment_id, backup.id)


def drill(world, app, backup):
    operation = world.services.drills.request(app.environment_id, backup.id, ADA)
    done = world.settle(operation.id)
    return done, world.services.backup_catalog.get(app.environment_id, backup.id)


def scratch_exists(world, app, operation_id):
    """The drill's scratch database on the environment's own server (no verification server is set)."""
    return world.databases.scratch_exists(app.connection, scratch_database(operation_id))


def checks_of(backup):
    return {check.name: check for check in backup.verification.checks}


def failed_checks(backup):
    return [check.name for check in backup.verification.checks if check.status is CheckStatus.FAILED]


def last_activity(world, app):
    entries, _ = world.services.activity.page(app.environment_id, limit=1, continuation=None)
    return entries[0]


def set_verification_queries(world, app, *queries):
    world.services.environment_catalog.update(
        app.environment_id,
        lambda environment: replace(
            environment, verification_queries=tuple(VerificationQuery(name, query) for name, query in queries)
        ),
    )


def file_store_listing(app):
    """Every blob of the environment's file container, with what changes when it is written."""
    return sorted((blob.name, blob.etag, blob.md5, blob.last_modified) for blob in app.store.list(""))


def assert_left_alone(world, app, done, tables, files):
    """After any drill: no scratch database, the environment's database and files as they were, the
    backup no longer in use."""
    assert not scratch_exists(world, app, done.id)
    assert app.contents() == tables
    assert file_store_listing(app) == files
    assert world.services.backup_catalog.get(app.environment_id, str(done.backup_id)).in_use_by == ()


# -- a good backup ----------------------------------------------------------------------------------


def test_a_drill_of_a_good_backup_passes_every_check_and_drops_its_scratch_database(world, app):
    backup = backup_of(world, app)
    # The assertion holds on the backup's data (3 customers), not on the environment's live database (4):
    # it passes only when it runs against what the drill loaded.
    app.add_customers("written after the backup")
    set_verification_queries(world, app, ("customers", THREE_CUSTOMERS))
    tables, files = app.contents(), file_store_listing(app)
    seen = {}

    def watching_the_load(chunks):
        seen["scratch while loading"] = scratch_exists(world, app, seen["id"])
        yield from chunks

    world.services.drill_steps.hooks.dump_stream = watching_the_load
    operation = world.services.drills.request(app.environment_id, backup.id, ADA)
    seen["id"] = operation.id
    running = world.services.backup_catalog.get(app.environment_id, backup.id)
    assert running.verification.status is VerificationStatus.RUNNING
    assert running.in_use_by == (f"verify {operation.id}",)

    done = world.settle(operation.id)
    assert done.status is OperationStatus.FINISHED, done.error
    verification = world.services.backup_catalog.get(app.environment_id, backup.id).verification
    assert verification.status is VerificationStatus.PASSED
    assert verification.operation_id == operation.id
    assert {check.name: check.status for check in verification.checks} == dict.fromkeys(ALL_CHECKS, CheckStatus.PASSED)
    assert verification.restore_seconds is not None  # the load, measured
    assert verification.restore_seconds >= 0
    assert verification.verified_on is not None
    environment = world.services.environments.get(app.environment_id)
    assert environment.last_drill == LastDrill(
        backup.id,
        VerificationStatus.PASSED,
        verification.verified_on,
        verification.restore_seconds,
        backup.dump_size,
        backup.database_size,
    )
    entry = last_activity(world, app)
    assert (entry.action.value, entry.outcome.value) == ("verify", "FINISHED")
    assert backup.id in entry.message
    assert seen["scratch while loading"]  # the name the check below looks for is the one the drill used
    assert_left_alone(world, app, done, tables, files)


# -- each check fails on a backup damaged in that one way --------------------------------------------


def assert_failed_on(world, app, done, backup, check, named):
    assert done.status is OperationStatus.FAILED
    assert backup.verification.status is VerificationStatus.FAILED
    found = checks_of(backup)[check]
    assert found.status is CheckStatus.FAILED
    assert named in found.detail
    entry = last_activity(world, app)
    assert (entry.action.value, entry.outcome.value) == ("verify", "FAILED")
    assert named in entry.message
    # The environment shows the drill as its last one when the dump loaded (a measured restore time), failed
    # or not; a drill whose load did not pass measured nothing and leaves it as it was.
    last_drill = world.services.environments.get(app.environment_id).last_drill
    if checks_of(backup).get("load") and checks_of(backup)["load"].status is CheckStatus.PASSED:
        assert backup.verification.restore_seconds is not None
        assert last_drill == LastDrill(
            backup.id,
            VerificationStatus.FAILED,
            backup.verification.verified_on,
            backup.verification.restore_seconds,
            backup.dump_size,
            backup.database_size,
        )
    else:
        assert backup.verification.restore_seconds is None
        assert last_drill is None


def test_a_flipped_byte_in_the_dump_fails_checksums_naming_the_damaged_chunk(world, app):
    backup = backup_of(world, app)
    damaged = damage_chunk(world.services.stores, backup)
    tables, files = app.contents(), file_store_listing(app)
    done, backup = drill(world, app, backup)
    assert_failed_on(world, app, done, backup, "checksums", f"(in {damaged} at byte ")
    assert "of the database dump is damaged" in checks_of(backup)["checksums"].detail
    # The load reads the same damaged chunk and fails at once (a damaged dump is not worth a retry); the
    # checks after it have nothing to look at.
    assert checks_of(backup)["load"].status is CheckStatus.FAILED
    assert done.step("load").attempts == 1
    assert_left_alone(world, app, done, tables, files)


def test_a_dump_with_intact_chunks_that_is_not_the_one_recorded_fails_checksums_alone(world, app):
    """Chunks that each match their own SHA-256 but together are not the dump the backup recorded: only
    the whole dump's SHA-256 can tell, and it is the only check that fails."""
    backup = backup_of(world, app)
    dump = stored_dump(world.services.stores, backup)
    replace_dump(world.services.stores, backup, dump.replace(b"customer 0", b"customer O"))
    tables, files = app.contents(), file_store_listing(app)
    done, backup = drill(world, app, backup)
    assert_failed_on(world, app, done, backup, "checksums", "does not match its SHA-256")
    assert failed_checks(backup) == ["checksums"]
    assert "checksums" in done.error
    assert_left_alone(world, app, done, tables, files)


def test_a_removed_content_object_fails_checksums_naming_the_file_document(world, app):
    backup = backup_of(world, app)
    entry = list(read_file_list(world.services.stores.backups, backup))[1]
    world.services.stores.content.delete(entry.object)
    tables, files = app.contents(), file_store_listing(app)
    done, backup = drill(world, app, backup)
    named = f"the content object of file document {entry.uuid} is missing"
    assert_failed_on(world, app, done, backup, "checksums", named)
    # The file list still names it, and the database still refers to it: file_references agrees with both.
    assert failed_checks(backup) == ["checksums"]
    assert checks_of(backup)["file_references"].status is CheckStatus.PASSED
    assert_left_alone(world, app, done, tables, files)


def test_more_damaged_file_documents_than_are_named_are_counted(world):
    app = world.app(documents=8, customers=3)
    backup = backup_of(world, app)
    entries = list(read_file_list(world.services.stores.backups, backup))
    for entry in entries[:7]:
        world.services.stores.content.delete(entry.object)
    _, backup = drill(world, app, backup)
    detail = checks_of(backup)["checksums"].detail
    assert detail.count("is missing") == 5  # the first five are named…
    assert detail.endswith("; and 2 more")  # …and the other two counted, once each


def test_a_dump_that_matches_its_checksum_but_does_not_load_fails_load_and_skips_the_rest(world, app):
    """The twin can fail a load: a stored dump it cannot parse. Stored intact (its recorded SHA-256 and
    size are those of what is stored), so the load is the only check that can find it."""
    backup = backup_of(world, app)
    unloadable = b"PGDMP but not an archive pg_restore can read"
    replace_dump(world.services.stores, backup, unloadable)
    world.services.backup_catalog.update(
        app.environment_id,
        backup.id,
        lambda current: replace(current, dump_sha256=hashlib.sha256(unloadable).hexdigest(), dump_size=len(unloadable)),
    )
    tables, files = app.contents(), file_store_listing(app)
    done, backup = drill(world, app, backup)
    assert_failed_on(world, app, done, backup, "load", "not a readable pg_dump custom-format archive")
    statuses = {check.name: check.status for check in backup.verification.checks}
    assert statuses == {
        "checksums": CheckStatus.PASSED,
        "load": CheckStatus.FAILED,
        "row_counts": CheckStatus.SKIPPED,
        "file_references": CheckStatus.SKIPPED,
        "assertions": CheckStatus.SKIPPED,
    }
    assert done.step("load").attempts == 1  # a dump that does not load is not retried
    assert_left_alone(world, app, done, tables, files)


def test_a_row_count_that_differs_from_the_recorded_one_fails_row_counts_naming_the_table(world, app):
    backup = backup_of(world, app)
    name = backup_folder(backup.namespace, backup.environment_id, backup.id) + ROWS
    document = json.loads(world.services.stores.backups.read_bytes(name))
    assert document["tables"][CUSTOMERS] == 3
    document["tables"][CUSTOMERS] += 1
    world.services.stores.backups.put(name, json.dumps(document).encode(), overwrite=True)
    tables, files = app.contents(), file_store_listing(app)
    done, backup = drill(world, app, backup)
    assert_failed_on(world, app, done, backup, "row_counts", f"{CUSTOMERS}: 3 rows loaded, 4 recorded")
    assert failed_checks(backup) == ["row_counts"]
    assert "row_counts" in done.error
    assert_left_alone(world, app, done, tables, files)


def test_a_file_document_row_the_backup_has_no_content_for_fails_file_references(world, app):
    """The database refers to a file document the backup's file list does not hold (and the backup did not
    warn about): here a row without contents, which the backup's query left out and the environment's
    query, changed since, selects. The backup's objects are intact, so file_references alone fails."""
    unlisted = app.add_document(has_contents=False, upload=False)
    backup = backup_of(world, app)
    assert unlisted not in {entry.uuid for entry in read_file_list(world.services.stores.backups, backup)}
    world.services.environment_catalog.update(
        app.environment_id,
        lambda environment: replace(environment, file_document_query=ALL_FILE_DOCUMENTS_QUERY),
    )
    tables, files = app.contents(), file_store_listing(app)
    done, backup = drill(world, app, backup)
    assert_failed_on(world, app, done, backup, "file_references", unlisted)
    assert "have no content in the backup" in checks_of(backup)["file_references"].detail
    assert failed_checks(backup) == ["file_references"]
    assert_left_alone(world, app, done, tables, files)


def test_a_backup_made_with_a_missing_file_passes_file_references_with_a_warning(world, app):
    gone = app.add_document(upload=False)
    backup = backup_of(world, app)
    assert backup.missing_file_uuids == (gone,)
    done, backup = drill(world, app, backup)
    assert done.status is OperationStatus.FINISHED, done.error
    assert backup.verification.status is VerificationStatus.PASSED
    assert checks_of(backup)["file_references"].status is CheckStatus.WARNING
    assert not scratch_exists(world, app, done.id)


def test_a_verification_query_that_returns_false_fails_assertions_naming_it(world, app):
    backup = backup_of(world, app)
    set_verification_queries(world, app, ("customers", THREE_CUSTOMERS), ("never-true", "SELECT false"))
    tables, files = app.contents(), file_store_listing(app)
    done, backup = drill(world, app, backup)
    assert_failed_on(world, app, done, backup, "assertions", "never-true: returned false")
    assert "customers" not in checks_of(backup)["assertions"].detail  # the true one is not named
    assert failed_checks(backup) == ["assertions"]
    assert "assertions" in done.error
    assert_left_alone(world, app, done, tables, files)


def test_a_server_that_refuses_create_database_fails_the_drill_naming_the_setting(world, app):
    backup = backup_of(world, app)
    world.databases.refuse_create.add(app.connection.host)
    tables, files = app.contents(), file_store_listing(app)
    done, backup = drill(world, app, backup)
    assert done.status is OperationStatus.FAILED
    assert "refused to create the scratch database" in done.error
    assert "APPBACKUPS_VERIFICATION_SERVERS" in done.error
    assert backup.verification.status is VerificationStatus.FAILED
    assert done.step("load").attempts == 1
    assert_left_alone(world, app, done, tables, files)


# -- cancel ------------------------------------------------------------------------------------------


def test_a_drill_cancelled_while_it_loads_ends_cancelled_drops_its_scratch_database_and_says_so(world, app):
    backup = backup_of(world, app)
    first, backup = drill(world, app, backup)  # a passed drill: the result a cancelled one leaves standing
    assert first.status is OperationStatus.FINISHED, first.error
    earlier = backup.verification
    last_drill = world.services.environments.get(app.environment_id).last_drill
    tables, files = app.contents(), file_store_listing(app)
    seen = {}

    def cancel_while_loading(chunks):
        for number, chunk in enumerate(chunks):
            if number == 0:
                seen["scratch while loading"] = scratch_exists(world, app, seen["id"])
                world.services.drills.cancel(seen["id"], BOB)
            yield chunk

    world.services.drill_steps.hooks.dump_stream = cancel_while_loading
    operation = world.services.drills.request(app.environment_id, backup.id, ADA)
    seen["id"] = operation.id
    done = world.settle(operation.id)
    assert done.status is OperationStatus.CANCELLED
    assert done.step("load").status.value == "Cancelled"
    assert done.step("check_database").attempts == 0  # nothing after the cancel ran
    assert seen["scratch while loading"]
    after = world.services.backup_catalog.get(app.environment_id, backup.id)
    assert after.verification == earlier  # a cancelled drill says nothing about the backup
    assert world.services.environments.get(app.environment_id).last_drill == last_drill
    entry = last_activity(world, app)
    assert (entry.action.value, entry.outcome.value, entry.actor_name) == ("verify", "CANCELLED", "Bob")
    assert_left_alone(world, app, done, tables, files)


# -- the environment's own database and files --------------------------------------------------------


def test_a_drill_never_writes_into_the_environments_own_database_or_file_store(world, app):
    backup = backup_of(world, app)
    # After the backup the environment moves on: a drill that loaded into its database, or put the backup's
    # files into its store, would show.
    app.add_customers("written after the backup")
    app.add_document()
    app.store.put(app.prefix + "not-referenced", b"an orphan", overwrite=True)
    tables, files = app.contents(), file_store_listing(app)
    database = app.database
    restored_into = []
    restore = world.databases.restore

    def recording_restore(connection, dump, **checks):
        restored_into.append(connection)
        restore(connection, dump, **checks)

    world.databases.restore = recording_restore
    done, backup = drill(world, app, backup)
    assert done.status is OperationStatus.FINISHED, done.error
    assert [connection.database for connection in restored_into] == [scratch_database(done.id)]
    assert app.database is database  # the same database object, not one replaced by a restore
    assert app.contents() == tables
    assert file_store_listing(app) == files
    assert not scratch_exists(world, app, done.id)
