"""The storage seams on their twins: the project's storage errors reach the core and the HTTP layer as
they expect (a 503, a backup deleted though its data stays, a missing file list read as empty), and the
in-memory blob accounts copy and sign across accounts as Blob Storage does."""

from __future__ import annotations

import pytest

from shared.adapters.blobs import BlobPermission, MemoryBlobAccount
from shared.adapters.errors import BlobExists, BlobNotFound, StorageFault, StorageNotFound
from shared.adapters.tables import MemoryRowTable, RowPage
from shared.backups.layout import FILES, FileEntry, backup_folder, content_object
from shared.bootstrap import Services, build_services, install_services
from shared.config import Containers, Settings, StorageConnection, Tables
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import Principal
from shared.errors import NotFound
from shared.faults import describe, is_transient
from tests.support.functions import call
from tests.support.memory import SteppingClock, memory_services
from tools.azurite import connection_string

ADMIN = Principal("admin-oid", "Admin")
PRODUCTION = {
    "namespace": "ns",
    "appName": "app",
    "displayName": "Production",
    "state": "Running",
    "database": {"host": "h", "database": "d", "user": "u"},
    "files": {"container": "files"},
}


@pytest.fixture
def services():
    services = memory_services(prune_grace_hours=0)
    services.environments.put("prod", EnvironmentBody.model_validate(PRODUCTION).to_registration(), ADMIN)
    return services


def finished_backup(services: Services) -> str:
    backup = services.backups.record("prod", ADMIN)
    return services.backup_catalog.save(backup.finished(backup.created_on, dump_size=1, dump_sha256="0" * 64)).id


def test_storage_errors_say_whether_trying_again_may_help() -> None:
    down = StorageFault("Storage failed: ServiceRequestError: connection refused", error_type="ServiceRequestError")
    assert is_transient(down)
    assert describe(down) == "Storage failed: ServiceRequestError: connection refused"
    assert not is_transient(BlobNotFound("gone"))
    assert not is_transient(StorageNotFound("gone"))
    assert not is_transient(BlobExists("there"))
    assert isinstance(BlobNotFound("gone"), StorageFault)


class UnreachableTable(MemoryRowTable):
    def query(self, *args: object, **kwargs: object) -> RowPage:
        raise StorageFault("Storage failed: ServiceRequestError: refused", error_type="ServiceRequestError")


def test_a_storage_fault_in_a_request_is_a_503_naming_what_failed() -> None:
    def table(name: str) -> MemoryRowTable:
        return UnreachableTable(name) if name == Tables.ENVIRONMENTS else MemoryRowTable(name)

    settings = Settings(storage=StorageConnection(connection_string=connection_string(1, 1, 1)), development_mode=True)
    install_services(build_services(settings, tables=table, clock=SteppingClock()))
    try:
        status, headers, document = call("list_environments", "GET", "environments")
    finally:
        install_services(None)
    assert (status, document["code"]) == (503, "storage_unavailable")
    assert headers["Content-Type"].startswith("application/problem+json")
    assert document["detail"] == "Storage did not answer as expected (ServiceRequestError); try again shortly."


def test_a_backup_is_deleted_even_when_its_data_cannot_be(services: Services) -> None:
    kept = finished_backup(services)
    folder = backup_folder("ns", "prod", kept)
    services.stores.backups.put(folder + FILES, b"")
    services.stores.backups.put(folder + "manifest.json", b"{}")
    services.backups.delete("prod", kept, ADMIN)
    assert list(services.stores.backups.list(folder)) == []

    stranded = finished_backup(services)
    services.stores.backups.account.delete_container(Containers.BACKUPS)  # type: ignore[attr-defined]
    services.backups.delete("prod", stranded, ADMIN)  # the store's BlobNotFound is logged, left to pruning
    with pytest.raises(NotFound):
        services.backups.get("prod", stranded)


def test_pruning_sweeps_what_no_file_list_names_and_reads_a_missing_list_as_empty(services: Services) -> None:
    content = services.stores.content
    named = content_object("ns", "11111111-0000-0000-0000-000000000000", "a" * 32)
    unnamed = content_object("ns", "22222222-0000-0000-0000-000000000000", "b" * 32)
    content.put(named, b"named")
    content.put(unnamed, b"unnamed")
    with_list = finished_backup(services)
    entry = FileEntry("11111111-0000-0000-0000-000000000000", 5, "a" * 32, named)
    services.stores.backups.put(backup_folder("ns", "prod", with_list) + FILES, entry.to_line())
    finished_backup(services)  # its file list was never written: BlobNotFound, nothing named
    assert services.pruning.last_sweep("ns") is None

    assert services.pruning.prune().marked == {"ns": 1}
    swept = services.pruning.prune()
    assert swept.swept == {"ns": 1}
    assert [blob.name for blob in content.list("ns/")] == [named]
    assert services.pruning.last_sweep("ns") is not None


def test_a_copy_across_accounts_needs_a_signed_source_url() -> None:
    home = MemoryBlobAccount()
    foreign = home.other_account("memory://foreign")
    assert home.other_account("memory://foreign") is foreign
    files, content = foreign.store("files"), home.store("content")
    files.put("doc", b"document")
    with pytest.raises(StorageFault) as refused:
        content.copy_from_url("object", files.url("doc"))
    assert refused.value.error_type == "CannotVerifyCopySource"
    source_url = files.copy_source_url("doc", content)
    assert "sig=" in source_url
    assert content.copy_from_url("object", source_url) is True
    assert content.read_bytes("object") == b"document"
    assert files.copy_source_url("doc", foreign.store("other")) == files.url("doc")  # one account: plain


def test_a_signed_url_is_bound_to_its_account_key_and_its_permission() -> None:
    account = MemoryBlobAccount()
    store = account.store("c")
    store.put("b", b"content")
    url = store.signed_url("b", BlobPermission.READ, account.clock().replace(year=2100))
    assert account.read_url(url)[0] == b"content"
    impostor = MemoryBlobAccount()  # the same URL, another key
    forged = impostor.store("c").signed_url("b", BlobPermission.READ, account.clock().replace(year=2100))
    assert forged.split("?")[0] == url.split("?")[0]
    with pytest.raises(PermissionError):
        account.read_url(forged)
    with pytest.raises(PermissionError):
        account.read_url(url.replace("sp=r", "sp=rcw"))
    with pytest.raises(PermissionError):
        account.write_url(url, b"overwritten")
