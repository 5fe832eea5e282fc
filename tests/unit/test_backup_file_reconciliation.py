"""A backup's file documents on the twins: incremental (the previous backup's file list as the index, only new
uuids read from the file store, by name) between full reconciliations (a listing of the file store), which run
when there is no previous list, when the last one is APPBACKUPS_FILE_RECONCILIATION_DAYS old, and on demand."""

import io
import json
from collections import Counter
from dataclasses import replace

import pytest
from rich.console import Console

from cli.api.shapes import BackupView as BackupShape
from cli.documents import Document
from cli.render.backups import backup_view
from shared.backups.layout import backup_folder, read_file_list
from shared.contracts.backups import BackupView
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus
from shared.domain.environments import MissingFiles
from shared.domain.operations import OperationStatus
from shared.errors import Unprocessable
from tests.support.core import CoreWorld, md5_hex

ADA = Principal(id="ada", name="Ada")
DAY = 24 * 3600


class CountingStore:
    """An environment's file store, counting the requests asked of it by kind."""

    REQUESTS = ("list", "info", "read_chunks", "read_bytes", "read_lines", "copy_source_url")

    def __init__(self, store, requests: Counter) -> None:
        self._store = store
        self._requests = requests

    def __getattr__(self, name):
        found = getattr(self._store, name)
        if name not in self.REQUESTS:
            return found

        def counted(*args, **kwargs):
            self._requests[name] += 1
            return found(*args, **kwargs)

        return counted


@pytest.fixture
def world():
    return CoreWorld()


def counting_file_stores(world) -> Counter:
    requests: Counter = Counter()
    stores = world.services.stores
    original = stores.file_store
    stores.file_store = lambda environment: CountingStore(original(environment), requests)
    return requests


def make_backup(world, app, **kwargs):
    backup = world.services.backups.request(app.environment_id, ADA, **kwargs)
    world.settle(str(backup.operation_id))
    return world.services.backup_catalog.get(app.environment_id, backup.id)


def entries_of(world, backup):
    return {entry.uuid: entry for entry in read_file_list(world.services.stores.backups, backup)}


def manifest_of(world, backup):
    folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
    return json.loads(world.services.stores.backups.read_bytes(folder + "manifest.json"))


def test_a_first_backup_reconciles_and_the_next_reads_only_its_new_file_documents_by_name(world):
    app = world.app(documents=6)
    first = make_backup(world, app)
    assert (first.files_reconciled, first.files_reconciled_on) == (True, first.created_on)
    requests = counting_file_stores(world)
    new = sorted([app.add_document(), app.add_document()])
    world.clock.advance(DAY)
    second = make_backup(world, app)
    assert second.status is BackupStatus.FINISHED, second.status_message
    assert (second.files_reconciled, second.files_reconciled_on) == (False, first.created_on)
    assert (second.file_count, second.files_copied) == (8, 2)
    assert requests["list"] == 0  # the file store is not listed
    assert requests["info"] == 2  # only the new uuids are read, by name
    assert requests["read_chunks"] == requests["read_bytes"] == 0
    before, after = entries_of(world, first), entries_of(world, second)
    assert {uuid: after[uuid] for uuid in before} == before  # the known entries are taken as they were
    assert sorted(set(after) - set(before)) == new
    for entry in after.values():
        assert md5_hex(world.services.stores.content.read_bytes(entry.object)) == entry.md5
    assert {uuid: entry.md5 for uuid, entry in after.items()} == app.referenced_files()
    manifest = manifest_of(world, second)["files"]
    assert (manifest["reconciled"], manifest["reconciledOn"]) == (False, first.created_on.isoformat())
    view = BackupView.of(second).model_dump(by_alias=True)
    assert (view["filesReconciled"], view["filesReconciledOn"]) == (False, first.created_on)


def test_a_file_document_the_app_deleted_leaves_the_next_incremental_file_list(world):
    app = world.app(documents=4)
    first = make_backup(world, app)
    gone = next(iter(app.files))
    app.remove_document(gone)
    second = make_backup(world, app)
    assert second.files_reconciled is False
    assert set(entries_of(world, second)) == set(entries_of(world, first)) - {gone}


def test_a_new_file_document_without_content_is_missing_as_in_a_full_backup(world):
    app = world.app(documents=3)
    make_backup(world, app)
    gone = app.add_document(upload=False)
    second = make_backup(world, app)
    assert second.files_reconciled is False
    assert second.status is BackupStatus.FINISHED
    assert (second.missing_files, second.missing_file_uuids) == (1, (gone,))
    assert gone not in entries_of(world, second)
    assert gone in second.warnings[0]


def test_with_missing_files_fail_a_new_file_document_without_content_fails_the_incremental_backup(world):
    app = world.app(documents=3, missing_files=MissingFiles.FAIL)
    make_backup(world, app)
    gone = app.add_document(upload=False)
    second = make_backup(world, app)
    assert second.status is BackupStatus.FAILED
    assert gone in second.status_message


def test_the_file_store_is_listed_again_once_the_last_listing_is_a_week_old(world):
    app = world.app(documents=3)
    first = make_backup(world, app)
    requests = counting_file_stores(world)
    world.clock.advance(7 * DAY - 60)
    assert make_backup(world, app).files_reconciled is False
    assert requests["list"] == 0
    world.clock.advance(60)
    third = make_backup(world, app)
    assert third.files_reconciled is True
    assert requests["list"] >= 1
    assert third.files_reconciled_on == third.created_on > first.created_on
    world.clock.advance(DAY)
    fourth = make_backup(world, app)
    assert (fourth.files_reconciled, fourth.files_reconciled_on) == (False, third.files_reconciled_on)


def test_zero_days_reconciles_every_backup():
    world = CoreWorld(file_reconciliation_days=0)
    app = world.app(documents=2)
    make_backup(world, app)
    requests = counting_file_stores(world)
    assert make_backup(world, app).files_reconciled is True
    assert requests["list"] >= 1


def test_a_backup_asked_to_reconcile_lists_the_file_store_whenever_the_last_listing_was(world):
    app = world.app(documents=3)
    make_backup(world, app)
    requests = counting_file_stores(world)
    world.clock.advance(60)
    asked = make_backup(world, app, reconcile=True)
    assert (asked.files_reconciled, asked.files_reconciled_on) == (True, asked.created_on)
    assert requests["list"] >= 1
    operation = world.services.operations.get(str(asked.operation_id))
    assert operation.parameters["reconcile"] is True


def test_content_changed_under_an_old_uuid_is_kept_as_it_was_until_a_reconciliation_picks_it_up(world):
    app = world.app(documents=3)
    first = make_backup(world, app)
    changed = next(iter(app.files))
    app.store.put(app.prefix + changed, b"new content under an old uuid", overwrite=True)
    app.files[changed] = b"new content under an old uuid"
    incremental = make_backup(world, app)
    assert incremental.files_reconciled is False
    assert entries_of(world, incremental)[changed] == entries_of(world, first)[changed]
    reconciled = make_backup(world, app, reconcile=True)
    entry = entries_of(world, reconciled)[changed]
    assert entry.md5 == md5_hex(b"new content under an old uuid") != entries_of(world, first)[changed].md5
    assert world.services.stores.content.read_bytes(entry.object) == b"new content under an old uuid"
    assert reconciled.files_copied == 1


def test_a_backup_made_before_incremental_file_lists_counts_as_reconciled_when_it_was_made(world):
    app = world.app(documents=2)
    first = make_backup(world, app)
    world.services.backup_catalog.update(
        app.environment_id, first.id, lambda backup: replace(backup, files_reconciled=None, files_reconciled_on=None)
    )
    world.clock.advance(DAY)
    assert make_backup(world, app).files_reconciled is False
    world.clock.advance(7 * DAY)
    assert make_backup(world, app).files_reconciled is True


def test_an_incremental_and_a_reconciled_backup_restore_the_same_environment(world):
    app = world.app(documents=4, customers=3)
    make_backup(world, app)
    app.add_document()
    app.remove_document(next(iter(app.files)))
    app.add_customers("after the first backup")
    expected_tables, expected_files = app.contents(), app.referenced_files()
    incremental = make_backup(world, app)
    reconciled = make_backup(world, app, reconcile=True)
    assert (incremental.files_reconciled, reconciled.files_reconciled) == (False, True)
    assert entries_of(world, incremental) == entries_of(world, reconciled)
    for backup in (incremental, reconciled):
        target = world.app(namespace=app.namespace, state="Stopped", documents=2, customers=1)
        operation = world.services.restores.request(app.environment_id, backup.id, target.environment_id, ADA)
        done = world.settle(operation.id)
        assert done.status is OperationStatus.FINISHED, done.error
        assert target.contents() == expected_tables
        assert target.stored_files() == expected_files


def test_a_backup_of_the_past_cannot_be_asked_to_reconcile(world):
    app = world.app(documents=1, point_in_time=True)
    with pytest.raises(Unprocessable, match="nothing to reconcile"):
        world.services.backups.request(app.environment_id, ADA, point_in_time=world.clock(), reconcile=True)


def test_the_cli_shows_how_a_backups_file_list_was_made(world):
    app = world.app(documents=2)
    first = make_backup(world, app)
    world.clock.advance(DAY)
    second = make_backup(world, app)
    console = Console(width=100, record=True, file=io.StringIO(), markup=False)
    for backup in (first, second):
        item = BackupView.of(backup).model_dump(mode="json", by_alias=True)
        console.print(backup_view(Document(item, BackupShape), now=world.clock()))  # type: ignore[arg-type]
    text = " ".join(console.export_text().split())
    assert "file list listed in full now" in text
    assert "file list new file documents read; the rest from the previous backup (file store last listed" in text
