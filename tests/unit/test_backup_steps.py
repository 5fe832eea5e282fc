"""The backup operation on the twins: what a backup holds, what a second one copies, how it fails,
retries and is cancelled — fast, with no Azurite, no PostgreSQL and no sleeps."""

import json

import pytest

from shared.adapters.errors import StorageFault
from shared.backups.layout import backup_folder, read_file_list
from shared.backups.steps import BackupHooks
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus
from shared.domain.environments import MissingFiles
from shared.domain.operations import OperationStatus
from shared.errors import Conflict
from tests.support.core import CoreWorld, md5_hex
from tests.support.dumps import stored_dump

ADA = Principal(id="ada", name="Ada")


def backup_folder_of(backup):
    return backup_folder(backup.namespace, backup.environment_id, backup.id)


@pytest.fixture
def world():
    return CoreWorld()


def make_backup(world, app, **kwargs):
    backup = world.services.backups.request(app.environment_id, ADA, **kwargs)
    world.settle(str(backup.operation_id))
    return world.services.backup_catalog.get(app.environment_id, backup.id)


def test_a_backup_holds_the_database_and_exactly_the_referenced_files(world):
    app = world.app(documents=4)
    app.add_document(has_contents=False, upload=False)
    app.store.put(app.prefix + "not-referenced", b"an orphan", overwrite=True)
    backup = make_backup(world, app, comment="first")
    assert backup.status is BackupStatus.FINISHED, backup.status_message
    assert (backup.file_count, backup.files_copied) == (4, 4)
    entries = list(read_file_list(world.services.stores.backups, backup))
    assert {entry.uuid: entry.md5 for entry in entries} == app.referenced_files()
    for entry in entries:
        assert md5_hex(world.services.stores.content.read_bytes(entry.object)) == entry.md5
    # The dump restores into an empty database with the same rows.
    dump = stored_dump(world.services.stores, backup)
    target = world.app(documents=0, customers=0)
    world.databases.restore(target.connection, lambda: iter([dump]))
    assert target.contents() == app.contents()
    entries_, _ = world.services.activity.page(app.environment_id, limit=1, continuation=None)
    assert (entries_[0].action.value, entries_[0].outcome.value) == ("backup", "FINISHED")


def test_a_second_backup_copies_only_what_is_new(world):
    app = world.app(documents=5)
    make_backup(world, app)
    app.add_document()
    second = make_backup(world, app)
    assert (second.file_count, second.files_copied) == (6, 1)


def test_a_write_after_the_snapshot_began_is_not_in_the_backup(world):
    app = world.app(documents=2, customers=1)
    before = app.contents()
    world.services.backup_steps.hooks = BackupHooks(after_snapshot_exported=lambda exported: app.add_customers("late"))
    backup = make_backup(world, app)
    dump = stored_dump(world.services.stores, backup)
    target = world.app(documents=0, customers=0)
    world.databases.restore(target.connection, lambda: iter([dump]))
    assert target.contents() == before


def test_a_missing_file_blob_is_left_out_of_the_backup_with_a_warning_naming_it(world):
    app = world.app(documents=2)
    gone = app.add_document(upload=False)
    backup = make_backup(world, app)
    assert backup.status is BackupStatus.FINISHED
    assert (backup.missing_files, backup.missing_file_uuids) == (1, (gone,))
    assert gone in backup.warnings[0]
    listed = {entry.uuid for entry in read_file_list(world.services.stores.backups, backup)}
    assert gone not in listed
    assert len(listed) == 2


def test_what_the_dump_does_not_carry_is_a_warning_of_the_backup_its_manifest_and_its_activity(world):
    app = world.app(documents=1)
    app.database.not_carried.append("database settings (TimeZone=Europe/Amsterdam)")
    backup = make_backup(world, app)
    assert backup.status is BackupStatus.FINISHED
    assert backup.not_carried == ("database settings (TimeZone=Europe/Amsterdam)",)
    assert backup.warnings == (
        "The database dump does not carry: database settings (TimeZone=Europe/Amsterdam). A restore leaves these "
        "as the target has them.",
    )
    manifest = world.services.stores.backups.read_bytes(backup_folder_of(backup) + "manifest.json")
    assert json.loads(manifest)["database"]["notCarried"] == ["database settings (TimeZone=Europe/Amsterdam)"]
    entries, _ = world.services.activity.page(app.environment_id, limit=1, continuation=None)
    assert "does not carry database settings (TimeZone=Europe/Amsterdam)" in entries[0].message


def test_with_missing_files_fail_a_missing_file_blob_fails_the_backup_and_leaves_no_data(world):
    app = world.app(documents=2, missing_files=MissingFiles.FAIL)
    gone = app.add_document(upload=False)
    backup = make_backup(world, app)
    assert backup.status is BackupStatus.FAILED
    assert gone in backup.status_message
    folder = backup_folder(app.namespace, app.environment_id, backup.id)
    assert list(world.services.stores.backups.list(folder)) == []


class FlakyOnce:
    """The first write of the dump meets a storage hiccup."""

    def __init__(self):
        self.failed = False

    def __call__(self, exported):
        if not self.failed:
            self.failed = True
            raise StorageFault("Storage failed: ServiceResponseError: connection reset", transient=True)


def test_a_storage_hiccup_is_retried_after_its_back_off(world):
    app = world.app(documents=2)
    world.services.backup_steps.hooks = BackupHooks(after_snapshot_exported=FlakyOnce())
    started = world.clock.now
    backup = make_backup(world, app)
    assert backup.status is BackupStatus.FINISHED
    assert backup.attempts == 2
    assert world.clock.now - started >= world.services.operations.settings.retry_base


def test_a_backup_fails_after_its_attempts_with_the_last_reason(world):
    app = world.app(documents=1)

    def always(exported):
        raise StorageFault("Storage failed: ServiceResponseError: connection reset", transient=True)

    world.services.backup_steps.hooks = BackupHooks(after_snapshot_exported=always)
    backup = make_backup(world, app)
    assert backup.status is BackupStatus.FAILED
    assert backup.attempts == world.services.settings.backup_attempts
    assert "connection reset" in backup.status_message


def test_a_backup_cancelled_while_it_dumps_ends_cancelled_and_leaves_nothing(world):
    app = world.app(documents=2)
    bob = Principal(id="bob", name="Bob")
    state = {}

    def cancel(exported):
        world.services.backups.cancel(app.environment_id, state["id"], bob)

    world.services.backup_steps.hooks = BackupHooks(after_snapshot_exported=cancel)
    backup = world.services.backups.request(app.environment_id, ADA)
    state["id"] = backup.id
    operation = world.settle(str(backup.operation_id))
    assert operation.status is OperationStatus.CANCELLED
    cancelled = world.services.backup_catalog.get(app.environment_id, backup.id)
    assert cancelled.status is BackupStatus.CANCELLED
    assert "Bob" in cancelled.status_message
    assert list(world.services.stores.backups.list(backup_folder(app.namespace, app.environment_id, backup.id))) == []
    with pytest.raises(Conflict):
        world.services.backups.cancel(app.environment_id, make_backup(world, app).id, bob)


def test_a_pre_restore_backup_is_made_while_the_environment_is_restoring(world):
    from dataclasses import replace

    from shared.domain.backups import Tier
    from shared.domain.environments import EnvironmentState

    app = world.app(documents=1)
    environment = world.services.environment_catalog.get(app.environment_id)
    world.services.environment_catalog.save(
        replace(environment, state=EnvironmentState.RESTORING, active_restore_id="r")
    )
    with pytest.raises(Conflict):
        world.services.backups.request(app.environment_id, ADA)
    backup = make_backup(world, app, tier=Tier.PRE_RESTORE)
    assert backup.status is BackupStatus.FINISHED
