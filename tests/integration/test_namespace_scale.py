"""A backup and a restore grow with the environment and its backup, not with the namespace: with the
namespace's content store full of other environments' content, neither lists it nor touches any of it.
Held by counting the storage requests at the transport seam (shared/adapters/metering.py), not by timing."""

from __future__ import annotations

import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.adapters.metering import StorageMeter
from shared.backups.layout import content_object
from shared.config import Containers
from shared.contracts.operations import OperationView
from shared.domain.access import Principal
from shared.domain.operations import OperationStatus
from tests.support.appdata import source_and_target
from tests.support.restoring import Harness

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")
OTHERS = 2500  # other environments' content objects: two and a half listing pages of the content store


@pytest.fixture
def meter() -> StorageMeter:
    return StorageMeter()


@pytest.fixture
def harness(storage_services, storage_connection_string, meter):
    return Harness(storage_connection_string, meter=meter)


def fill_with_other_environments(harness: Harness, namespace: str, count: int) -> None:
    """Content objects as other environments' backups of the same namespace leave them."""
    content = harness.services.clients.blob_service.get_container_client(Containers.CONTENT)

    def put(_: int) -> None:
        data = os.urandom(64)
        name = content_object(namespace, str(uuid.uuid4()), hashlib.md5(data, usedforsecurity=False).hexdigest())
        content.upload_blob(name, data)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


def content_requests(measurement, namespace: str) -> dict[str, int]:
    return {kind: measurement.count(kind, container=Containers.CONTENT) for kind in ("list", "copy", "properties")}


def test_backup_and_restore_do_not_touch_the_namespaces_other_content(
    harness, meter, database_factory, postgres_admin_dsn
):
    source, target = source_and_target(
        harness.services, database_factory, postgres_admin_dsn, documents=12, target_documents=4
    )
    fill_with_other_environments(harness, source.namespace, OTHERS)
    services = harness.services

    with meter.measuring() as backup:
        backup_id = harness.backup(source.environment_id, ADA)
    assert services.backup_catalog.get(source.environment_id, backup_id).file_count == 12
    # No listing of the content store at all; one copy per new file, nothing else there.
    assert backup.listed_prefixes(Containers.CONTENT) == {}
    assert content_requests(backup, source.namespace) == {"list": 0, "copy": 12, "properties": 0}
    # The source's own listing: one page of its prefix.
    assert backup.listed_prefixes(source.container.container_name) == {source.prefix: 1}

    with meter.measuring() as restore:
        operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
        harness.drain()
    done = services.restores.get(operation.id)
    assert done.status is OperationStatus.FINISHED, done.error
    assert target.stored_files() == source.referenced_files()
    # Its progress counted the files and their bytes, of totals known from the start.
    placed = done.step("switch").progress
    size = sum(len(content) for content in source.files.values())
    assert (placed.files_done, placed.files_total, placed.file_bytes_done, placed.file_bytes_total) == (
        12,
        12,
        size,
        size,
    )
    view = OperationView.of(done).to_json()["steps"][1]["progress"]["files"]
    assert (view["done"], view["bytesTotal"], view["percent"], view["etaSeconds"]) == (12, size, 100.0, 0.0)
    assert restore.listed_prefixes(Containers.CONTENT) == {}
    # The pre-restore backup copies the target's 4 files in; the restore copies each of the backup's 12
    # content objects out (counted on the target's container) and checks what arrived from the target's
    # own listing: nothing is looked up in the content store at all.
    assert content_requests(restore, source.namespace) == {"list": 0, "copy": 4, "properties": 0}
    assert restore.count("copy", container=target.container.container_name) == 12
    # Every blob request of the restore, whatever its kind, is bounded by the files of the two
    # environments, not by the OTHERS objects in the namespace.
    assert restore.count(service="blob") < 10 * (12 + 4) + 40


def test_the_meter_counts_requests_by_kind(storage_services, storage_connection_string, meter):
    harness = Harness(storage_connection_string, meter=meter)
    store = harness.services.stores.backups
    name = f"meter-test/{uuid.uuid4()}"
    with meter.measuring() as measured:
        store.put(name, b"x" * 10)
        assert store.read_bytes(name) == b"x" * 10
        assert store.info(name) is not None
        assert [blob.name for blob in store.list(name)] == [name]
        assert store.delete(name)
        harness.services.environment_catalog.find("no-such-environment")
    kinds = measured.by_kind()
    # put's answer has the new blob's properties: the one property read is info's.
    assert (kinds["write"], kinds["read"], kinds["properties"], kinds["list"], kinds["delete"]) == (1, 1, 1, 1, 1)
    assert kinds["table"] >= 1
    assert measured.listed_prefixes(Containers.BACKUPS) == {name: 1}
