"""Scheduled backups and pruning against real Azurite and PostgreSQL."""

import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from shared.backups.layout import FILES, FileEntry, backup_folder
from shared.backups.steps import BackupHooks
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus, Tier
from shared.dumps.store import read_chunk_list
from tests.support.appdata import create_scratch_app
from tests.support.restoring import Harness

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def harness(storage_services, storage_connection_string):
    return Harness(storage_connection_string, APPBACKUPS_PRUNE_GRACE_HOURS="0")


@pytest.fixture
def app(harness, database_factory, postgres_admin_dsn):
    return create_scratch_app(harness.services, database_factory(), postgres_admin_dsn, documents=3)


def expire(services, environment_id, backup_id):
    backup = services.backup_catalog.get(environment_id, backup_id)
    return services.backup_catalog.save(replace(backup, expires_on=LONG_AGO))


def objects(services, namespace) -> set[str]:
    return {blob.name for blob in services.stores.content.list(f"{namespace}/")}


def referenced(services, backup_id, environment_id) -> set[str]:
    """The content objects a backup needs: its file documents' and its dump's chunks."""
    backup = services.backup_catalog.get(environment_id, backup_id)
    folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
    files = {FileEntry.from_line(line).object for line in services.stores.backups.read_lines(folder + FILES) if line}
    chunks = {ref.object_name(backup.namespace) for ref in read_chunk_list(services.stores.backups, folder)}
    assert chunks, "a backup's dump is stored as chunks"
    return files | chunks


def add_bulk(app) -> None:
    """Rows enough for a dump of many chunks, most of them the same in the next backup."""
    with app.connect() as connection:
        connection.execute(
            "CREATE TABLE bulk AS SELECT n AS id, md5(n::text) AS note FROM generate_series(1, 100000) n"
        )


def chunks_only(names: set[str]) -> set[str]:
    return {name for name in names if "/chunks/" in name or "/packs/" in name}


def test_a_scheduled_night_is_backed_up_once_with_the_longest_retention(harness, app):
    services = harness.services
    night = date(2026, 11, 1)  # the first Sunday of November
    for tier in (Tier.WEEKLY, Tier.NIGHTLY, Tier.MONTHLY, Tier.NIGHTLY):
        services.scheduler.run(app.environment_id, tier, night)
    work = [message.body for message in harness.queues["operation-work"].sent]
    made = {services.operations.get(message["operationId"]).backup_id for message in work}
    assert len(made) == 1
    (backup_id,) = made
    for message in work:  # the queue delivered the work more than once: nothing is made twice
        services.operations.handle(message["operationId"])
    harness.drain()
    backup = services.backup_catalog.get(app.environment_id, backup_id)
    assert (backup.status, backup.tier, backup.created_by.id) == (
        BackupStatus.FINISHED,
        Tier.MONTHLY,
        "scheduler",
    )
    assert backup.expires_on == backup.created_on.replace(year=backup.created_on.year + 1)
    state = services.scheduler.state(app.environment_id)
    assert (state.last.night, state.last_backup.id) == (night, backup_id)


def test_pruning_forgets_expired_backups_but_not_pinned_or_used_ones(harness, app):
    services = harness.services
    expired, pinned, used, fresh = (harness.backup(app.environment_id, ADA) for _ in range(4))
    for backup_id in (expired, pinned, used):
        expire(services, app.environment_id, backup_id)
    services.backup_catalog.save(
        replace(
            services.backup_catalog.get(app.environment_id, pinned), keep_until=datetime.now(UTC) + timedelta(days=3)
        )
    )
    services.backup_catalog.mark_in_use(app.environment_id, used, "download test")

    report = services.pruning.prune({app.namespace})
    assert [s.id for s in report.forgotten] == [expired]
    assert used in report.in_use
    remaining = {s.id for s in services.backup_catalog.of_environment(app.environment_id)}
    assert remaining == {pinned, used, fresh}
    folder = backup_folder(app.namespace, app.environment_id, expired)
    assert list(services.stores.backups.list(folder)) == []
    entries, _ = services.activity.page(app.environment_id, limit=1, continuation=None)
    assert (entries[0].action.value, entries[0].outcome.value) == ("prune", "FINISHED")
    assert "Pruned 1 expired backup" in entries[0].message


def test_unreferenced_content_is_marked_then_swept_after_the_grace_period(harness, app):
    services = harness.services
    first = harness.backup(app.environment_id, ADA)
    gone_uuid = next(iter(app.files))
    with app.connect() as connection:  # the app deletes a file document: the next backup lacks it
        connection.execute('DELETE FROM "system$filedocument" WHERE "__uuid__" = %s', (gone_uuid,))
    app.container.delete_blob(app.prefix + gone_uuid)
    second = harness.backup(app.environment_id, ADA)
    only_first = referenced(services, first, app.environment_id) - referenced(services, second, app.environment_id)
    assert len(only_first - chunks_only(only_first)) == 1  # the file document
    assert chunks_only(only_first)  # and the chunks of first's dump that second's lacks (its header, at least)
    assert objects(services, app.namespace) == only_first | referenced(services, second, app.environment_id)
    expire(services, app.environment_id, first)

    services.pruning.grace = timedelta(hours=1)
    report = services.pruning.prune({app.namespace})
    assert report.marked[app.namespace] == len(only_first)
    assert app.namespace not in report.swept
    assert only_first <= objects(services, app.namespace)  # marked, not yet deleted
    again = services.pruning.prune({app.namespace})
    assert app.namespace not in again.swept  # still within the grace period

    services.pruning.grace = timedelta(0)
    swept = services.pruning.prune({app.namespace})
    assert swept.swept[app.namespace] == len(only_first)
    # Exactly: what only first needed is gone, and everything second needs (chunks shared with first too) stays.
    assert objects(services, app.namespace) == referenced(services, second, app.environment_id)


def test_pruning_while_a_backup_is_made_keeps_every_object_it_needs(harness, app):
    services = harness.services
    add_bulk(app)
    first = harness.backup(app.environment_id, ADA)
    first_needs = referenced(services, first, app.environment_id)
    expire(services, app.environment_id, first)  # the backup now running reuses first's objects, chunks among them
    reports = []

    def prune_meanwhile(exported):
        reports.append(services.pruning.prune({app.namespace}))  # forgets first, marks its objects
        reports.append(services.pruning.prune({app.namespace}))  # would sweep them: a backup is being made

    services.backup_steps.hooks = BackupHooks(after_snapshot_exported=prune_meanwhile)
    second = harness.backup(app.environment_id, ADA)
    services.backup_steps.hooks = BackupHooks()
    assert [s.id for s in reports[0].forgotten] == [first]
    assert app.namespace in reports[1].postponed
    assert services.backup_catalog.get(app.environment_id, second).status is BackupStatus.FINISHED
    second_needs = referenced(services, second, app.environment_id)
    # second reused first's file documents, marked meanwhile (first forgotten, its dump's chunks are packed anew)
    assert first_needs & second_needs - chunks_only(second_needs)
    assert second_needs <= objects(services, app.namespace)

    after = services.pruning.prune({app.namespace})  # quiet now: the sweep runs, and keeps what second needs
    assert after.swept[app.namespace] == len(first_needs - second_needs)
    assert objects(services, app.namespace) == second_needs


def test_a_backup_repairs_an_object_swept_while_it_was_made(harness, app):
    services = harness.services
    harness.backup(app.environment_id, ADA)
    victim = {}

    def sweep_behind_its_back(exported):
        name = sorted(objects(services, app.namespace) - chunks_only(objects(services, app.namespace)))[0]
        victim["name"] = name
        services.stores.content.delete(name)  # as a sweep that judged it unreferenced would
        services.stores.maintenance.put(
            f"{app.namespace}/last-sweep.json",
            f'{{"startedOn": "{datetime.now(UTC).isoformat()}"}}'.encode(),
            overwrite=True,
        )

    services.backup_steps.hooks = BackupHooks(after_snapshot_exported=sweep_behind_its_back)
    second = harness.backup(app.environment_id, ADA)
    services.backup_steps.hooks = BackupHooks()
    assert services.backup_catalog.get(app.environment_id, second).status is BackupStatus.FINISHED
    assert victim["name"] in referenced(services, second, app.environment_id)
    assert victim["name"] in objects(services, app.namespace)


def test_a_backup_whose_reused_chunk_was_swept_while_it_was_made_is_made_again(harness, app):
    services = harness.services
    add_bulk(app)
    first = harness.backup(app.environment_id, ADA)
    first_folder = backup_folder(app.namespace, app.environment_id, first)
    victim = {}

    def sweep_a_chunk():  # after the backup stored its dump, reusing this chunk, and before it checks
        if victim:
            return  # the repeat
        last = list(read_chunk_list(services.stores.backups, first_folder))[-1]  # the dump's end: unchanged
        name = last.object_name(app.namespace)
        victim["name"] = name
        services.stores.content.delete(name)  # as a sweep that judged it unreferenced would
        services.stores.maintenance.put(
            f"{app.namespace}/last-sweep.json",
            f'{{"startedOn": "{datetime.now(UTC).isoformat()}"}}'.encode(),
            overwrite=True,
        )

    services.backup_steps.hooks = BackupHooks(after_dump_stored=sweep_a_chunk)
    second = harness.backup(app.environment_id, ADA)
    services.backup_steps.hooks = BackupHooks()
    made = services.backup_catalog.get(app.environment_id, second)
    assert made.status is BackupStatus.FINISHED
    assert made.attempts == 2  # the first attempt found the chunk's pack gone; the repeat packed its chunks again
    needs = referenced(services, second, app.environment_id)
    assert victim["name"] not in needs
    assert needs <= objects(services, app.namespace)


def test_pruning_twice_at_once_is_safe(harness, app):
    services = harness.services
    keep = [harness.backup(app.environment_id, ADA) for _ in range(2)]
    drop = harness.backup(app.environment_id, ADA)
    expire(services, app.environment_id, drop)
    errors = []

    def prune():
        try:
            services.pruning.prune({app.namespace})
            services.pruning.prune({app.namespace})
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=prune) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {s.id for s in services.backup_catalog.of_environment(app.environment_id)} == set(keep)
    for backup_id in keep:
        assert referenced(services, backup_id, app.environment_id) <= objects(services, app.namespace)


def test_orphaned_backup_data_is_removed(harness, app):
    services = harness.services
    orphan = f"{app.namespace}/{app.environment_id}/00000000-0000-8000-8000-000000000000/db.backup"
    services.stores.backups.put(orphan, b"PGDMP left behind")
    kept = harness.backup(app.environment_id, ADA)
    report = services.pruning.prune({app.namespace})
    assert report.orphans == 1
    assert services.stores.backups.info(orphan) is None
    assert list(services.stores.backups.list(backup_folder(app.namespace, app.environment_id, kept)))


def test_a_deregistered_environments_backups_keep_their_content_and_still_expire(harness, app):
    services = harness.services
    kept = harness.backup(app.environment_id, ADA)
    expiring = harness.backup(app.environment_id, ADA)
    services.environments.deregister(app.environment_id, ADA, services.backup_catalog)
    expire(services, app.environment_id, expiring)

    services.pruning.grace = timedelta(0)
    first = services.pruning.prune({app.namespace})  # forgets the expired one, marks what nothing needs
    services.pruning.prune({app.namespace})  # sweeps: nothing the remaining backup refers to may go
    assert [backup.id for backup in first.forgotten] == [expiring]
    assert services.backup_catalog.find(app.environment_id, expiring) is None  # expired, forgotten
    assert services.backup_catalog.find(app.environment_id, kept) is not None
    assert referenced(services, kept, app.environment_id) <= objects(services, app.namespace)
    fan_out = services.scheduler.fan_out(Tier.NIGHTLY, datetime(2026, 11, 2, 2, tzinfo=UTC))
    assert app.environment_id not in fan_out.queued
