"""Incremental file lists on real Azurite and PostgreSQL: a second backup reads only its new file documents, by
name, and lists nothing; a backup asked to reconcile lists the file store and picks up content changed under an
old uuid."""

import pytest

from shared.adapters.metering import StorageMeter
from shared.backups.layout import read_file_list
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus
from tests.support.appdata import create_scratch_app, md5_hex
from tests.support.restoring import Harness

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")


def test_an_incremental_backup_reads_new_file_documents_by_name_and_a_reconciliation_lists_the_store(
    storage_connection_string, storage_services, database_factory, postgres_admin_dsn
):
    meter = StorageMeter()
    harness = Harness(storage_connection_string, meter=meter)
    services = harness.services
    app = create_scratch_app(services, database_factory(), postgres_admin_dsn)
    container = app.container.container_name

    def backup(**kwargs):
        backup = services.backup_catalog.get(app.environment_id, harness.backup(app.environment_id, ADA, **kwargs))
        assert backup.status is BackupStatus.FINISHED, backup.status_message
        return backup, {entry.uuid: entry for entry in read_file_list(services.stores.backups, backup)}

    first, first_entries = backup()
    assert first.files_reconciled is True
    new = app.add_document()
    changed = next(uuid for uuid in first_entries if uuid != new)
    app.container.upload_blob(app.prefix + changed, b"changed under an old uuid", overwrite=True)

    with meter.measuring() as incremental_requests:
        second, second_entries = backup()
    assert (second.files_reconciled, second.files_copied, second.file_count) == (False, 1, first.file_count + 1)
    assert incremental_requests.count("list", container=container) == 0
    # the container's existence, and the new uuid read by name
    assert incremental_requests.count("properties", container=container) == 2
    assert second_entries[changed] == first_entries[changed]  # an old uuid is trusted until a reconciliation
    assert md5_hex(services.stores.content.read_bytes(second_entries[new].object)) == second_entries[new].md5

    with meter.measuring() as reconciling_requests:
        third, third_entries = backup(reconcile=True)
    assert third.files_reconciled is True
    assert reconciling_requests.count("list", container=container) >= 1
    assert third.files_copied == 1
    assert third_entries[changed].md5 == md5_hex(b"changed under an old uuid")
    assert services.stores.content.read_bytes(third_entries[changed].object) == b"changed under an old uuid"
