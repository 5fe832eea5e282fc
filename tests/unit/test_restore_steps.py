"""The restore operation on the twins: the target ends exactly the backup, or exactly as it was; a
crash around the COMMIT is made good without guessing; cancel before the COMMIT undoes everything."""

import pytest

from shared.backups.layout import read_file_list
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus, Tier
from shared.domain.environments import EnvironmentState
from shared.domain.operations import OperationStatus, StepStatus
from shared.errors import Conflict, Unprocessable
from tests.support.core import CoreWorld
from tests.support.dumps import replace_dump, stored_dump

ADA = Principal(id="ada", name="Ada")


class Crash(BaseException):
    """The worker process dies here: nothing after it runs."""


@pytest.fixture
def world():
    return CoreWorld()


@pytest.fixture
def apps(world):
    source = world.app(documents=5, customers=4)
    target = world.app(namespace=source.namespace, state="Stopped", documents=2, customers=1)
    return source, target


def backup_of(world, app):
    backup = world.services.backups.request(app.environment_id, ADA)
    world.settle(str(backup.operation_id))
    return world.services.backup_catalog.get(app.environment_id, backup.id)


def restore(world, source, backup, target):
    return world.services.restores.request(source.environment_id, backup.id, target.environment_id, ADA)


def test_a_restore_leaves_the_target_exactly_the_backup(world, apps):
    source, target = apps
    backup = backup_of(world, source)
    expected_tables, expected_files = source.contents(), source.referenced_files()
    source.add_customers("written after the backup")
    operation = restore(world, source, backup, target)
    locked = world.services.environments.get(target.environment_id)
    assert (locked.state, locked.active_restore_id) == (EnvironmentState.RESTORING, operation.id)
    done = world.settle(operation.id)
    assert done.status is OperationStatus.FINISHED, done.error
    assert target.contents() == expected_tables
    assert target.stored_files() == expected_files  # its own file documents are gone, the backup's are there
    unlocked = world.services.environments.get(target.environment_id)
    assert (unlocked.state, unlocked.active_restore_id) == (EnvironmentState.STOPPED, None)
    assert world.services.backup_catalog.get(source.environment_id, backup.id).in_use_by == ()
    pre_restore = [s for s in world.services.backup_catalog.of_environment(target.environment_id)]
    assert [(s.tier, s.status) for s in pre_restore] == [(Tier.PRE_RESTORE, BackupStatus.FINISHED)]


def test_a_dump_that_does_not_match_its_checksum_leaves_the_target_as_it_was(world, apps):
    source, target = apps
    backup = backup_of(world, source)
    dump = stored_dump(world.services.stores, backup).replace(b"customer 0", b"customer O")
    replace_dump(world.services.stores, backup, dump)  # still a dump: only its checksum can tell
    before_tables, before_files = target.contents(), target.stored_files()
    done = world.settle(restore(world, source, backup, target).id)
    assert done.status is OperationStatus.FAILED
    assert done.error_step == "switch"
    assert "SHA-256" in done.error
    assert target.contents() == before_tables
    assert target.stored_files() == before_files
    assert world.services.environments.get(target.environment_id).state is EnvironmentState.STOPPED
    entries, _ = world.services.activity.page(target.environment_id, limit=1, continuation=None)
    assert (entries[0].action.value, entries[0].outcome.value) == ("restore", "FAILED")


def test_a_cancel_just_before_the_commit_undoes_every_file_it_placed(world, apps):
    source, target = apps
    backup = backup_of(world, source)
    before_tables, before_files = target.contents(), target.stored_files()
    operation_ids = []
    world.services.restore_steps.hooks.before_commit = lambda: world.services.restores.cancel(
        operation_ids[0], Principal(id="bob", name="Bob")
    )
    operation = restore(world, source, backup, target)
    operation_ids.append(operation.id)
    done = world.settle(operation.id)
    assert done.status is OperationStatus.CANCELLED
    assert done.step("switch").status is StepStatus.CANCELLED
    assert target.contents() == before_tables
    assert target.stored_files() == before_files
    entries, _ = world.services.activity.page(target.environment_id, limit=1, continuation=None)
    assert (entries[0].outcome.value, entries[0].actor_name) == ("CANCELLED", "Bob")


def test_a_crash_right_after_the_commit_is_carried_on_not_redone(world, apps):
    source, target = apps
    backup = backup_of(world, source)
    expected = source.contents()
    crashes = []
    operation = restore(world, source, backup, target)
    original_restore = world.databases.restore

    def restore_then_die(connection, dump, **checks):
        original_restore(connection, dump, **checks)
        if not crashes:
            crashes.append("committed")
            raise Crash  # the COMMIT went through; the checkpoint after it did not

    world.databases.restore = restore_then_die
    with pytest.raises(Crash):
        world.settle(operation.id)
    assert target.contents() == expected
    world.databases.restore = original_restore
    done = world.settle(operation.id)  # the watchdog: the lease runs out, the step resumes
    assert done.status is OperationStatus.FINISHED
    assert done.step("switch").attempts == 2
    assert done.step("switch").output["committed"] is True
    assert target.contents() == expected


def test_a_crash_before_the_commit_loads_again(world, apps):
    source, target = apps
    backup = backup_of(world, source)
    before = target.contents()
    operation = restore(world, source, backup, target)
    world.services.restore_steps.hooks.before_commit = lambda: (_ for _ in ()).throw(Crash)
    with pytest.raises(Crash):
        world.settle(operation.id)
    assert target.contents() == before  # the transaction died with the process
    world.services.restore_steps.hooks.before_commit = None
    done = world.settle(operation.id)
    assert done.status is OperationStatus.FINISHED
    assert target.contents() == source.contents()


def test_refusals_before_anything_is_locked(world, apps):
    source, target = apps
    backup = backup_of(world, source)
    running = world.app(namespace=source.namespace, state="Running")
    with pytest.raises(Conflict) as refused:
        restore(world, source, backup, running)
    assert refused.value.code == "environment_not_stopped"
    elsewhere = world.app(namespace="other", state="Stopped")
    with pytest.raises(Unprocessable):
        restore(world, source, backup, elsewhere)
    first = restore(world, source, backup, target)
    with pytest.raises(Conflict) as again:
        restore(world, source, backup, target)
    assert again.value.code == "restore_in_progress"
    assert world.settle(first.id).status is OperationStatus.FINISHED


def content_of(world, backup):
    return list(read_file_list(world.services.stores.backups, backup))


@pytest.mark.parametrize("damage", ["changed", "missing"])
def test_a_content_object_that_changed_or_went_fails_the_restore_before_the_switch(world, apps, damage):
    """What each copy brought is checked against the file list (from the target's listing) before the
    COMMIT; a content object that is gone fails its copy. Either way the target stays as it was."""
    source, target = apps
    backup = backup_of(world, source)
    entry = content_of(world, backup)[2]
    content = world.services.stores.content
    if damage == "changed":
        content.put(entry.object, b"not what was backed up", overwrite=True)
    else:
        content.delete(entry.object)
    before_tables, before_files = target.contents(), target.stored_files()
    done = world.settle(restore(world, source, backup, target).id)
    assert done.status is OperationStatus.FAILED
    assert done.error_step == "switch"
    assert entry.uuid in done.error
    assert ("does not match its MD5" if damage == "changed" else "missing from the store") in done.error
    assert target.contents() == before_tables
    assert target.stored_files() == before_files
