"""The in-memory blob store must behave like Azure Blob Storage (Azurite) for everything the core relies
on: name order, overwrite refusal, ETag conditions, Content-MD5 and metadata, block writes that appear
only when committed, the project's errors for what is missing, and signed URLs that do what they say."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from shared.adapters.blobs import AzureBlobStore, BlobPermission, BlobStore, MemoryBlobAccount
from shared.adapters.errors import BlobExists, BlobNotFound, SourceChanged, StorageFault
from shared.faults import is_transient
from tools.azurite import connection_string

pytestmark = pytest.mark.integration


@dataclass
class Account:
    """One storage account as the tests see it: stores on fresh containers, and plain HTTP with URLs."""

    new_store: Callable[[], BlobStore]
    missing_store: Callable[[], BlobStore]  # a store whose container does not exist
    get: Callable[[str], tuple[int, bytes, dict[str, str]]]  # GET the URL: status, body, headers (lower case)
    put: Callable[[str, bytes], int]  # PUT a block blob to the URL: status


def _memory_account() -> Account:
    account = MemoryBlobAccount()

    def get(url: str) -> tuple[int, bytes, dict[str, str]]:
        try:
            body, headers = account.read_url(url)
        except PermissionError:
            return 403, b"", {}
        return 200, body, {name.lower(): value for name, value in headers.items()}

    def put(url: str, data: bytes) -> int:
        try:
            account.write_url(url, data)
        except PermissionError:
            return 403
        return 201

    return Account(
        new_store=lambda: account.store("c" + uuid.uuid4().hex[:12]),
        missing_store=lambda: account.store("missing-" + uuid.uuid4().hex[:8], create=False),
        get=get,
        put=put,
    )


def _azurite_account(service: BlobServiceClient, created: list[str]) -> Account:
    def new_store() -> BlobStore:
        name = "c" + uuid.uuid4().hex[:12]
        service.create_container(name)
        created.append(name)
        return AzureBlobStore(service, name)

    def get(url: str) -> tuple[int, bytes, dict[str, str]]:
        response = requests.get(url, timeout=10)
        return response.status_code, response.content, {name.lower(): value for name, value in response.headers.items()}

    def put(url: str, data: bytes) -> int:
        return requests.put(url, data=data, headers={"x-ms-blob-type": "BlockBlob"}, timeout=10).status_code

    return Account(
        new_store=new_store,
        missing_store=lambda: AzureBlobStore(service, "missing-" + uuid.uuid4().hex[:8]),
        get=get,
        put=put,
    )


@pytest.fixture(params=["memory", "azurite"])
def account(request: pytest.FixtureRequest) -> Iterator[Account]:
    if request.param == "memory":
        yield _memory_account()
        return
    service = BlobServiceClient.from_connection_string(request.getfixturevalue("storage_connection_string"))
    created: list[str] = []
    yield _azurite_account(service, created)
    for name in created:
        service.delete_container(name)


@pytest.fixture
def store(account: Account) -> BlobStore:
    return account.new_store()


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_put_gives_content_md5_metadata_and_an_etag_and_reads_back(store: BlobStore) -> None:
    data = b"first line\n\nthird line\nno newline at the end"
    info = store.put("a/b.txt", data, metadata={"kind": "test"}, content_type="text/plain")
    assert (info.name, info.size, info.md5, info.metadata) == ("a/b.txt", len(data), md5_hex(data), {"kind": "test"})
    assert info.etag
    assert store.info("a/b.txt") == info
    assert store.info("a/none.txt") is None
    assert store.read_bytes("a/b.txt") == data
    assert b"".join(store.read_chunks("a/b.txt")) == data
    assert list(store.read_lines("a/b.txt")) == [b"first line", b"", b"third line", b"no newline at the end"]


def test_put_refuses_to_overwrite_unless_asked(store: BlobStore) -> None:
    first = store.put("x", b"one")
    with pytest.raises(BlobExists) as refused:
        store.put("x", b"two")
    assert not is_transient(refused.value)
    assert store.read_bytes("x") == b"one"
    second = store.put("x", b"two", overwrite=True)
    assert second.etag != first.etag
    assert store.read_bytes("x") == b"two"


def test_listing_is_in_name_order_under_the_prefix_page_by_page(store: BlobStore) -> None:
    names = ["p/b", "p/a/x", "p/é", "p/A", "p/a0", "p/a-", "p/z", "q/a", "pa"]
    for name in names:
        store.put(name, name.encode(), metadata={"name": "yes"})
    expected = ["p/A", "p/a-", "p/a/x", "p/a0", "p/b", "p/z", "p/é"]  # byte order of the UTF-8 name
    assert [blob.name for blob in store.list("p/", page_size=2)] == expected
    assert [blob.name for blob in store.list("p/", page_size=1000)] == expected
    assert all(blob.metadata == {} for blob in store.list("p/"))
    listed = list(store.list("p/", with_metadata=True, page_size=3))
    assert all(blob.metadata == {"name": "yes"} for blob in listed)
    assert [(blob.size, blob.md5) for blob in listed] == [(len(n.encode()), md5_hex(n.encode())) for n in expected]
    assert list(store.list("nothing/")) == []


def test_a_read_bound_to_an_etag_fails_once_the_blob_changes(store: BlobStore) -> None:
    info = store.put("f", b"version 1")
    assert b"".join(store.read_chunks("f", etag=info.etag)) == b"version 1"
    store.put("f", b"version 2", overwrite=True)
    with pytest.raises(SourceChanged):
        b"".join(store.read_chunks("f", etag=info.etag))
    with pytest.raises(SourceChanged):  # a condition on a blob that is gone fails as the condition
        b"".join(store.read_chunks("gone", etag=info.etag))


def test_a_range_is_read_in_one_request_and_stops_at_the_blob_end(store: BlobStore) -> None:
    data = bytes(range(256)) * 40
    store.put("packed", data)
    assert store.read_range("packed", 0, 10) == data[:10]
    assert store.read_range("packed", 1000, 3000) == data[1000:4000]
    assert store.read_range("packed", len(data) - 5, 100) == data[-5:]


def test_a_missing_blob_is_blob_not_found(store: BlobStore) -> None:
    for read in (
        lambda: store.read_bytes("gone"),
        lambda: store.read_range("gone", 0, 10),
        lambda: b"".join(store.read_chunks("gone")),
        lambda: list(store.read_lines("gone")),
    ):
        with pytest.raises(BlobNotFound) as missing:
            read()
        assert not is_transient(missing.value)
    assert store.delete("gone") is False


def test_a_missing_container_is_blob_not_found(account: Account) -> None:
    store = account.missing_store()
    assert store.exists() is False
    assert account.new_store().exists() is True
    assert store.info("x") is None
    assert store.delete("x") is False

    def write_and_commit() -> None:
        writer = store.writer("x", block_size=4, parallelism=1)
        writer.write(b"data")
        writer.commit()

    for action in (
        lambda: list(store.list("")),
        lambda: store.read_bytes("x"),
        lambda: store.put("x", b"data"),
        lambda: store.delete_prefix(""),
        write_and_commit,
    ):
        with pytest.raises(BlobNotFound):
            action()


def test_a_copy_keeps_content_md5_and_metadata_and_never_overwrites(account: Account) -> None:
    source, destination = account.new_store(), account.new_store()
    data = b"file document"
    source.put("files/a b ü", data, metadata={"origin": "source"})
    url = source.copy_source_url("files/a b ü", destination)
    assert destination.copy_from_url("objects/1", url) is True
    copied = destination.info("objects/1")
    assert copied is not None
    assert (copied.size, copied.md5, copied.metadata) == (len(data), md5_hex(data), {"origin": "source"})
    assert destination.read_bytes("objects/1") == data
    source.put("files/a b ü", b"changed", overwrite=True)
    assert destination.copy_from_url("objects/1", url) is False
    assert destination.read_bytes("objects/1") == data
    assert destination.copy_from_url("objects/1", url, overwrite=True, metadata={"md5": "given"}) is True
    replaced = destination.info("objects/1")
    assert replaced is not None
    assert (destination.read_bytes("objects/1"), replaced.metadata) == (b"changed", {"md5": "given"})


def test_a_copy_is_bound_to_the_source_etag_checked_before_the_destination(account: Account) -> None:
    source, destination = account.new_store(), account.new_store()
    stale = source.put("s", b"one")
    current = source.put("s", b"two", overwrite=True)
    url = source.copy_source_url("s", destination)
    with pytest.raises(SourceChanged):
        destination.copy_from_url("d", url, source_etag=stale.etag)
    assert destination.info("d") is None
    assert destination.copy_from_url("d", url, source_etag=current.etag) is True
    with pytest.raises(SourceChanged):  # the source is judged first, even where the copy would be refused
        destination.copy_from_url("d", url, source_etag=stale.etag)
    with pytest.raises(SourceChanged):
        destination.copy_from_url("e", source.copy_source_url("gone", destination))
    assert destination.info("e") is None


def test_delete_and_delete_prefix(store: BlobStore) -> None:
    for name in ("p/1", "p/2", "p/sub/3", "p0", "q/1"):
        store.put(name, b".")
    assert store.delete("p/1") is True
    assert store.delete("p/1") is False
    assert store.delete_prefix("p/") == 2
    assert [blob.name for blob in store.list("")] == ["p0", "q/1"]
    assert store.delete_prefix("p/") == 0


def test_a_block_writer_shows_nothing_until_it_commits(store: BlobStore) -> None:
    writer = store.writer("w", block_size=4, parallelism=2)
    pieces = [b"ab", b"cdef", b"g", b"hijklmnop", b""]
    for piece in pieces:
        writer.write(piece)
    data = b"".join(pieces)
    assert (writer.size, writer.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert store.info("w") is None
    assert list(store.list("")) == []
    writer.commit(metadata={"count": "5"}, content_type="text/plain")
    info = store.info("w")
    assert info is not None
    assert (info.size, info.md5, info.metadata) == (len(data), None, {"count": "5"})  # no Content-MD5 on a block list
    assert store.read_bytes("w") == data

    dropped = store.writer("dropped", block_size=4, parallelism=2)
    dropped.write(b"never seen")
    dropped.abort()
    assert store.info("dropped") is None

    again = store.writer("w", block_size=4, parallelism=1)
    again.write(b"other")
    with pytest.raises(BlobExists):
        again.commit(overwrite=False)
    assert store.read_bytes("w") == data
    replacing = store.writer("w", block_size=4, parallelism=1)
    replacing.write(b"replaced")
    replacing.commit()
    assert store.read_bytes("w") == b"replaced"

    empty = store.writer("empty", block_size=4, parallelism=1)
    empty.commit()
    assert store.read_bytes("empty") == b""


def test_signed_urls_allow_what_they_say_on_their_one_blob(account: Account) -> None:
    store = account.new_store()
    store.put("archive.tar.gz", b"archive")
    store.put("other", b"other")
    soon = datetime.now(UTC) + timedelta(minutes=5)
    read = store.signed_url("archive.tar.gz", BlobPermission.READ, soon, content_disposition='attachment; filename="a"')
    status, body, headers = account.get(read)
    assert (status, body, headers.get("content-disposition")) == (200, b"archive", 'attachment; filename="a"')
    assert account.put(read, b"overwritten") == 403
    assert account.get(read.replace("archive.tar.gz", "other"))[0] == 403  # signed for its own blob only
    assert account.get(store.url("archive.tar.gz"))[0] == 403  # a plain URL is no permission
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert account.get(store.signed_url("archive.tar.gz", BlobPermission.READ, past))[0] == 403

    upload = store.signed_url("uploads/new", BlobPermission.CREATE_WRITE, soon)
    assert account.put(upload, b"uploaded") == 201
    assert store.read_bytes("uploads/new") == b"uploaded"
    assert account.get(upload)[0] == 403  # write-only
    assert store.read_bytes("archive.tar.gz") == b"archive"


def test_the_azure_adapter_translates_an_unreachable_service_into_a_transient_fault() -> None:
    nothing_listens = BlobServiceClient.from_connection_string(connection_string(1, 1, 1), retry_total=0)
    store = AzureBlobStore(nothing_listens, "c")
    with pytest.raises(StorageFault) as down:
        store.read_bytes("x")
    assert not isinstance(down.value, BlobNotFound)
    assert is_transient(down.value)
    assert down.value.error_type == "ServiceRequestError"
    with pytest.raises(StorageFault):
        list(store.list(""))
    with pytest.raises(StorageFault):
        store.put("x", b"data")
