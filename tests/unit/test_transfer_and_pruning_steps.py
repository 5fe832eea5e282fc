"""Downloads, uploads and pruning on the twins: the archive holds what it should and is checked on the
way, an upload of it stores nothing new, a damaged one is refused leaving nothing, and pruning forgets
what expired and sweeps what nothing needs after its grace period."""

import io
import tarfile
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.backups.layout import read_file_list
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus, Tier
from shared.domain.downloads import DataType
from shared.domain.operations import OperationStatus
from tests.support.core import CoreWorld, md5_hex

ADA = Principal(id="ada", name="Ada")


@pytest.fixture
def world():
    return CoreWorld(prune_grace_hours=6)


def finished_backup(world, app):
    backup = world.services.backups.request(app.environment_id, ADA)
    world.settle(str(backup.operation_id))
    return world.services.backup_catalog.get(app.environment_id, backup.id)


def prepared(world, app, backup, data_type):
    download, started = world.services.downloads.request(app.environment_id, backup.id, data_type, ADA)
    assert started
    world.settle(download.operation.id)
    return world.services.downloads.status(app.environment_id, backup.id, data_type)


def archive_bytes(world, download) -> bytes:
    return world.services.stores.archives.read_bytes(download.operation.output("prepare", "archiveBlob"))


def test_a_full_snapshot_archive_holds_the_dump_and_every_file_document(world):
    app = world.app(documents=3)
    backup = finished_backup(world, app)
    ready = prepared(world, app, backup, DataType.FILES_AND_DATABASE)
    assert ready.status == "Ready"
    with tarfile.open(fileobj=io.BytesIO(archive_bytes(world, ready))) as tar:
        names = tar.getnames()
        stored = {
            name.rsplit("/", 1)[1]: md5_hex(tar.extractfile(name).read()) for name in names if name.startswith("tree/")
        }
    assert {".metadata", "db/db.backup"} <= set(names)
    assert stored == app.referenced_files()
    assert world.services.backup_catalog.get(app.environment_id, backup.id).in_use_by == ()


def test_a_content_object_that_does_not_match_fails_the_download_and_publishes_nothing(world):
    app = world.app(documents=2)
    backup = finished_backup(world, app)
    entry = next(read_file_list(world.services.stores.backups, backup))
    content = world.services.stores.content
    content.put(entry.object, b"not what was backed up", overwrite=True)
    download, _ = world.services.downloads.request(app.environment_id, backup.id, DataType.FILES_AND_DATABASE, ADA)
    failed = world.settle(download.operation.id)
    assert failed.status is OperationStatus.FAILED
    assert entry.uuid in failed.error or "MD5" in failed.error
    folder = f"{app.namespace}/{app.environment_id}/{backup.id}/{failed.id}/"
    assert list(world.services.stores.archives.list(folder)) == []
    assert (
        world.services.downloads.status(app.environment_id, backup.id, DataType.FILES_AND_DATABASE).status == "Failed"
    )


def test_an_uploaded_archive_of_the_namespace_becomes_a_backup_storing_nothing_new(world):
    app = world.app(documents=3)
    backup_record = finished_backup(world, app)
    archive = archive_bytes(world, prepared(world, app, backup_record, DataType.FILES_AND_DATABASE))
    other = world.app(namespace=app.namespace, documents=0)
    session, _ = world.services.uploads.start(other.environment_id, ADA, file_name="copy.tar.gz")
    world.services.stores.uploads.put(session.blob_name, archive, overwrite=True)
    uploaded, operation = world.services.uploads.complete(other.environment_id, session.id, ADA)
    done = world.settle(operation.id)
    assert done.status is OperationStatus.FINISHED, done.error
    backup = world.services.backup_catalog.get(other.environment_id, uploaded.id)
    assert (backup.status, backup.tier, backup.file_count) == (BackupStatus.FINISHED, Tier.UPLOADED, 3)
    assert backup.files_copied == 0  # the namespace's store had every file document already
    assert backup.dump_sha256 == backup_record.dump_sha256
    assert world.services.stores.uploads.info(session.blob_name) is None


def test_an_upload_that_is_no_archive_is_refused_and_leaves_nothing_behind(world):
    app = world.app(documents=0)
    session, _ = world.services.uploads.start(app.environment_id, ADA)
    world.services.stores.uploads.put(session.blob_name, b"these are notes\n" * 20, overwrite=True)
    uploaded, operation = world.services.uploads.complete(app.environment_id, session.id, ADA)
    done = world.settle(operation.id)
    assert done.status is OperationStatus.FAILED
    assert "neither a Full Snapshot archive" in done.error
    backup = world.services.backup_catalog.get(app.environment_id, uploaded.id)
    assert backup.status is BackupStatus.FAILED
    assert list(world.services.stores.backups.list(f"{app.namespace}/{app.environment_id}/{uploaded.id}/")) == []
    assert world.services.stores.uploads.info(session.blob_name) is None


def test_pruning_forgets_expired_backups_and_sweeps_content_only_after_its_grace(world):
    app = world.app(documents=2)
    first = finished_backup(world, app)
    only_first = {entry.object for entry in read_file_list(world.services.stores.backups, first)}
    for file_uuid in list(app.files):  # the app replaces its file documents
        app.files.pop(file_uuid)
    app.database.tables['public."system$filedocument"'].rows.clear()
    app.add_document()
    second = finished_backup(world, app)
    needed = {entry.object for entry in read_file_list(world.services.stores.backups, second)}
    catalog = world.services.backup_catalog
    catalog.save(replace(catalog.get(app.environment_id, first.id), expires_on=world.clock.now - timedelta(days=1)))

    def objects() -> set[str]:
        return {blob.name for blob in world.services.stores.content.list(f"{app.namespace}/")}

    report = world.services.pruning.prune({app.namespace})
    assert [backup.id for backup in report.forgotten] == [first.id]
    assert only_first <= objects()  # marked, not yet swept
    world.clock.advance(timedelta(hours=6, minutes=1).total_seconds())
    world.services.pruning.prune({app.namespace})
    assert not only_first & objects()
    assert needed <= objects()
