"""Blob Storage seam: listing in name order, streamed reads, server-side copies that never
overwrite, and block-staged writes with bounded memory. ``BlobStore`` is what the core needs;
``AzureBlobStore`` is Azure Blob Storage and ``MemoryBlobStore`` its in-memory twin, held to the
same behaviour by tests/integration/test_blob_store_contract.py. Both raise only the project's
errors (``shared.adapters.errors``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Protocol
from urllib.parse import parse_qs, quote, unquote, urlencode

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContentSettings,
    generate_blob_sas,
)

from shared.adapters.errors import (
    BlobCopyFailed,
    BlobExists,
    BlobNotFound,
    SourceChanged,
    StorageFault,
    storage_fault,
    translated,
)


class BlobPermission(Enum):
    """What a signed URL lets its holder do with its one blob."""

    READ = "r"  # downloads
    CREATE_WRITE = "cw"  # uploads: create the blob and write its content, nothing else


@dataclass(frozen=True)
class BlobInfo:
    name: str
    size: int
    etag: str
    md5: str | None  # hex Content-MD5, when the service has one
    metadata: dict[str, str] = field(default_factory=dict)
    last_modified: datetime | None = None


class BlockWriter(Protocol):
    """Writes one blob from a stream; nothing is visible until ``commit``."""

    name: str
    size: int  # bytes written so far

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of what was written so far."""
        ...

    def write(self, data: bytes) -> None: ...

    def commit(
        self, *, metadata: dict[str, str] | None = None, content_type: str | None = None, overwrite: bool = True
    ) -> None:
        """Make the blob what was written. Unless ``overwrite``, an existing blob raises ``BlobExists``."""
        ...

    def abort(self) -> None:
        """Drop what was written; the blob stays as it was."""
        ...


class BlobStore(Protocol):
    """One container of one storage account: what the core needs from Blob Storage."""

    container_name: str
    account_url: str

    def copy_source_url(self, name: str, destination: BlobStore) -> str:
        """The URL ``destination`` copies ``name`` from."""
        ...

    def signed_url(
        self, name: str, permission: BlobPermission, expires_on: datetime, *, content_disposition: str | None = None
    ) -> str:
        """A URL that lets its holder do ``permission`` on the blob ``name`` (only) until ``expires_on``."""
        ...

    def exists(self) -> bool:
        """Does the container exist?"""
        ...

    def url(self, name: str) -> str: ...

    def list(self, prefix: str, *, with_metadata: bool = False, page_size: int = 1000) -> Iterator[BlobInfo]:
        """Blobs under ``prefix`` in name order; their metadata only when asked for."""
        ...

    def info(self, name: str) -> BlobInfo | None:
        """The blob's properties and metadata, None when it (or its container) does not exist."""
        ...

    def read_chunks(self, name: str, *, etag: str | None = None) -> Iterator[bytes]:
        """The content in chunks; with ``etag``, only that version (else ``SourceChanged``).
        A missing blob raises ``BlobNotFound``."""
        ...

    def read_bytes(self, name: str) -> bytes: ...

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` in one request (fewer at the blob's end). A missing blob raises
        ``BlobNotFound``."""
        ...

    def read_lines(self, name: str) -> Iterator[bytes]: ...

    def put(
        self,
        name: str,
        data: bytes,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = False,
    ) -> BlobInfo:
        """Write a small blob at once (it gets a Content-MD5). Unless ``overwrite``, an existing one
        raises ``BlobExists``."""
        ...

    def copy_from_url(
        self,
        name: str,
        source_url: str,
        *,
        source_etag: str | None = None,
        metadata: dict[str, str] | None = None,
        overwrite: bool = False,
    ) -> bool:
        """Server-side copy into ``name`` (content, Content-MD5, and the source's metadata unless
        ``metadata`` is given). A missing source, or one whose ETag is not ``source_etag``, raises
        ``SourceChanged``; then, unless ``overwrite``, an existing blob is left as it is. True when
        this call wrote the blob."""
        ...

    def delete(self, name: str) -> bool:
        """True when this call deleted the blob."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under ``prefix``; how many were deleted."""
        ...

    def writer(self, name: str, *, block_size: int, parallelism: int = 4) -> BlockWriter: ...


def lines_of(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The lines of a chunked stream, without their newlines."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending


# -- Azure Blob Storage ---------------------------------------------------------------------------


def _info(properties: object) -> BlobInfo:
    content_md5 = properties.content_settings.content_md5  # type: ignore[attr-defined]
    return BlobInfo(
        name=properties.name,  # type: ignore[attr-defined]
        size=int(properties.size),  # type: ignore[attr-defined]
        etag=properties.etag,  # type: ignore[attr-defined]
        md5=bytes(content_md5).hex() if content_md5 else None,
        metadata=dict(properties.metadata or {}),  # type: ignore[attr-defined]
        last_modified=properties.last_modified,  # type: ignore[attr-defined]
    )


_SAS_PERMISSIONS = {
    BlobPermission.READ: BlobSasPermissions(read=True),
    BlobPermission.CREATE_WRITE: BlobSasPermissions(create=True, write=True),
}


class UrlSigner:
    """Makes time-limited SAS URLs for one blob: account-key signed (Azurite, connection strings)
    or user-delegation signed (Microsoft Entra, in Azure)."""

    def __init__(self, service: BlobServiceClient) -> None:
        self._service = service
        self._delegation_key: object | None = None
        self._delegation_expiry = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def _user_delegation_key(self, until: datetime) -> object:
        with self._lock:
            if self._delegation_key is None or self._delegation_expiry < until:
                start = datetime.now(UTC) - timedelta(minutes=5)
                expiry = max(until, datetime.now(UTC) + timedelta(hours=1))
                with translated():
                    self._delegation_key = self._service.get_user_delegation_key(start, expiry)
                self._delegation_expiry = expiry
            return self._delegation_key

    def sign(
        self,
        container_name: str,
        blob_name: str,
        permission: BlobPermission,
        expires_on: datetime,
        *,
        content_disposition: str | None = None,
    ) -> str:
        account_key = getattr(self._service.credential, "account_key", None)
        start = datetime.now(UTC) - timedelta(minutes=5)
        common = {
            "account_name": self._service.account_name,
            "container_name": container_name,
            "blob_name": blob_name,
            "permission": _SAS_PERMISSIONS[permission],
            "expiry": expires_on,
            "start": start,
            "content_disposition": content_disposition,
        }
        if account_key:
            token = generate_blob_sas(account_key=account_key, **common)
        else:
            common["protocol"] = "https"
            token = generate_blob_sas(user_delegation_key=self._user_delegation_key(expires_on), **common)
        return f"{self._service.get_blob_client(container_name, blob_name).url}?{token}"


class AzureBlobStore:
    """One container of one storage account."""

    def __init__(self, service: BlobServiceClient, container_name: str, signer: UrlSigner | None = None) -> None:
        self._container = service.get_container_client(container_name)
        self._signer = signer or UrlSigner(service)
        self.container_name = container_name
        self.account_url = service.url.rstrip("/")

    def copy_source_url(self, name: str, destination: BlobStore) -> str:
        """Plain within one account (the copy request's own authorization covers the source), a
        short read-only SAS across accounts."""
        if destination.account_url == self.account_url:
            return self.url(name)
        return self.signed_url(name, BlobPermission.READ, datetime.now(UTC) + timedelta(hours=2))

    def signed_url(
        self, name: str, permission: BlobPermission, expires_on: datetime, *, content_disposition: str | None = None
    ) -> str:
        return self._signer.sign(
            self.container_name, name, permission, expires_on, content_disposition=content_disposition
        )

    def exists(self) -> bool:
        with translated(BlobNotFound):
            return self._container.exists()

    def url(self, name: str) -> str:
        return self._container.get_blob_client(name).url

    def list(self, prefix: str, *, with_metadata: bool = False, page_size: int = 1000) -> Iterator[BlobInfo]:
        """The service lists in byte order of the name."""
        include = ["metadata"] if with_metadata else None
        with translated(BlobNotFound):
            for properties in self._container.list_blobs(
                name_starts_with=prefix, include=include, results_per_page=page_size
            ):
                yield _info(properties)

    def info(self, name: str) -> BlobInfo | None:
        try:
            return _info(self._container.get_blob_client(name).get_blob_properties())
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise storage_fault(error, BlobNotFound) from error

    def read_chunks(self, name: str, *, etag: str | None = None) -> Iterator[bytes]:
        """In chunks of the client's chunk size."""
        conditions = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
        try:
            yield from self._container.get_blob_client(name).download_blob(max_concurrency=1, **conditions).chunks()
        except ResourceModifiedError as error:  # also what a condition on a missing blob answers (412)
            raise SourceChanged(name) from error
        except AzureError as error:
            raise storage_fault(error, BlobNotFound) from error

    def read_bytes(self, name: str) -> bytes:
        with translated(BlobNotFound):
            return self._container.get_blob_client(name).download_blob().readall()

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        with translated(BlobNotFound):
            return self._container.get_blob_client(name).download_blob(offset=offset, length=length).readall()

    def read_lines(self, name: str) -> Iterator[bytes]:
        """The blob's lines, streamed."""
        return lines_of(self.read_chunks(name))

    def put(
        self,
        name: str,
        data: bytes,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = False,
    ) -> BlobInfo:
        client = self._container.get_blob_client(name)
        try:
            written = client.upload_blob(
                data,
                overwrite=overwrite,
                metadata=metadata,
                content_settings=ContentSettings(content_type=content_type) if content_type else None,
            )
        except ResourceExistsError as error:
            raise BlobExists(f"{self.container_name}/{name} exists") from error
        except AzureError as error:
            raise storage_fault(error, BlobNotFound) from error
        # Put Blob's answer has what the caller needs (the service's Content-MD5 among it): no second request.
        content_md5 = written.get("content_md5")
        return BlobInfo(
            name=name,
            size=len(data),
            etag=written["etag"],
            md5=bytes(content_md5).hex() if content_md5 else None,
            metadata=dict(metadata or {}),
            last_modified=written.get("last_modified"),
        )

    def copy_from_url(
        self,
        name: str,
        source_url: str,
        *,
        source_etag: str | None = None,
        metadata: dict[str, str] | None = None,
        overwrite: bool = False,
        poll_interval: float = 0.2,
        timeout: float = 3600,
    ) -> bool:
        """Our own objects are never rewritten."""
        client = self._container.get_blob_client(name)
        conditions: dict[str, object] = {} if overwrite else {"match_condition": MatchConditions.IfMissing}
        if source_etag:
            conditions.update(source_etag=source_etag, source_match_condition=MatchConditions.IfNotModified)
        try:
            result = client.start_copy_from_url(source_url, metadata=metadata, **conditions)
        except ResourceExistsError:
            return False
        except (ResourceModifiedError, ResourceNotFoundError) as error:  # a 404 does not say whose it is
            raise SourceChanged(source_url.split("?")[0]) from error
        except AzureError as error:
            raise storage_fault(error, BlobNotFound) from error
        with translated(BlobNotFound):
            self._await_copy(client, name, result, poll_interval, timeout)
        return True

    def _await_copy(
        self, client: BlobClient, name: str, result: dict[str, object], poll_interval: float, timeout: float
    ) -> None:
        status = result.get("copy_status")
        deadline = time.monotonic() + timeout
        delay = poll_interval
        while status == "pending":
            if time.monotonic() > deadline:
                client.abort_copy(result["copy_id"])
                raise BlobCopyFailed(f"copy into {name} did not finish in {timeout:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 5)
            status = client.get_blob_properties().copy.status
        if status != "success":
            self.delete(name)
            raise BlobCopyFailed(f"copy into {name} ended {status}")

    def delete(self, name: str) -> bool:
        try:
            self._container.delete_blob(name, delete_snapshots="include")
        except ResourceNotFoundError:
            return False
        except AzureError as error:
            raise storage_fault(error, BlobNotFound) from error
        return True

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        with translated(BlobNotFound):
            for blob in self._container.list_blobs(name_starts_with=prefix):
                count += self.delete(blob.name)
        return count

    def writer(self, name: str, *, block_size: int, parallelism: int = 4) -> AzureBlockWriter:
        return AzureBlockWriter(self._container, name, block_size=block_size, parallelism=parallelism)


class AzureBlockWriter:
    """Writes one block blob from a stream: fixed-size blocks staged in parallel, at most
    ``parallelism`` in flight (so memory stays near ``(parallelism + 1) * block_size``), a
    SHA-256 of the whole content computed on the way, nothing visible until ``commit``."""

    def __init__(self, container: ContainerClient, name: str, *, block_size: int, parallelism: int) -> None:
        self.name = name
        self._client = container.get_blob_client(name)
        self._block_size = block_size
        self._buffer = bytearray()
        self._blocks: list[BlobBlock] = []
        self._pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="stage")
        self._slots = threading.BoundedSemaphore(parallelism)
        self._staged: list[Future[None]] = []
        self._sha256 = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def write(self, data: bytes) -> None:
        self._sha256.update(data)
        self.size += len(data)
        if not self._buffer and len(data) == self._block_size:
            self._stage(data)  # a whole block as it came: no copy
            return
        self._buffer += data
        while len(self._buffer) >= self._block_size:
            self._stage(bytes(self._buffer[: self._block_size]))
            del self._buffer[: self._block_size]

    def _stage_block(self, block_id: str, chunk: bytes) -> None:
        with translated(BlobNotFound):
            self._client.stage_block(block_id, chunk, length=len(chunk))

    def _stage(self, chunk: bytes) -> None:
        for future in self._staged:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        block_id = base64.b64encode(f"{len(self._blocks):08d}".encode()).decode()
        self._blocks.append(BlobBlock(block_id=block_id))
        self._slots.acquire()
        future = self._pool.submit(self._stage_block, block_id, chunk)
        future.add_done_callback(lambda _: self._slots.release())
        self._staged.append(future)

    def commit(
        self, *, metadata: dict[str, str] | None = None, content_type: str | None = None, overwrite: bool = True
    ) -> None:
        try:
            if self._buffer or not self._blocks:
                self._stage(bytes(self._buffer))
                self._buffer.clear()
            for future in self._staged:
                future.result()
            conditions = {} if overwrite else {"match_condition": MatchConditions.IfMissing}
            self._client.commit_block_list(
                self._blocks,
                metadata=metadata,
                content_settings=ContentSettings(content_type=content_type) if content_type else None,
                **conditions,
            )
        except ResourceExistsError as error:
            raise BlobExists(f"{self._client.container_name}/{self.name} exists") from error
        except AzureError as error:
            raise storage_fault(error, BlobNotFound) from error
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Uncommitted blocks are never visible and the service discards them."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._buffer.clear()


# -- the in-memory twin ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Blob:
    data: bytes
    etag: str
    md5: str | None
    metadata: dict[str, str]
    content_type: str | None
    last_modified: datetime

    def info(self, name: str, *, with_metadata: bool = True) -> BlobInfo:
        metadata = dict(self.metadata) if with_metadata else {}
        return BlobInfo(name, len(self.data), self.etag, self.md5, metadata, self.last_modified)


class MemoryBlobAccount:
    """An in-memory storage account: containers of blobs, shared by the ``MemoryBlobStore`` on it.
    Accounts made with ``other_account`` know each other, so copies between them work as they do
    between real accounts: with a signed source URL. The account signs URLs with a key of its own
    and answers them (``read_url``, ``write_url``) as the service answers a plain HTTP request.
    ``clock`` is the service's time: blobs' Last-Modified, and when a signed URL expires."""

    def __init__(
        self,
        url: str = "memory://account",
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        _accounts: dict[str, MemoryBlobAccount] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.clock = clock
        self._containers: dict[str, dict[str, _Blob]] = {}
        self._lock = threading.RLock()
        self._key = secrets.token_bytes(32)
        self._etags = itertools.count(1)
        self._accounts = {} if _accounts is None else _accounts
        self._accounts[self.url] = self

    def other_account(self, url: str) -> MemoryBlobAccount:
        """Another account, reachable from this one by URL (a cross-account copy)."""
        return self._accounts.get(url.rstrip("/")) or MemoryBlobAccount(url, clock=self.clock, _accounts=self._accounts)

    def create_container(self, name: str) -> None:
        with self._lock:
            self._containers.setdefault(name, {})

    def delete_container(self, name: str) -> None:
        with self._lock:
            self._containers.pop(name, None)

    def store(self, container_name: str, *, create: bool = True) -> MemoryBlobStore:
        if create:
            self.create_container(container_name)
        return MemoryBlobStore(self, container_name)

    # -- what the stores use ----------------------------------------------------------------------

    def _blobs(self, container_name: str) -> dict[str, _Blob]:
        """The container's blobs (call with the lock held); ``BlobNotFound`` when there is none."""
        blobs = self._containers.get(container_name)
        if blobs is None:
            raise BlobNotFound(
                f"A storage container or blob that is needed does not exist (container {container_name}).",
                error_type="ContainerNotFound",
            )
        return blobs

    def _new_blob(
        self, data: bytes, md5: str | None, metadata: dict[str, str] | None, content_type: str | None
    ) -> _Blob:
        etag = f'"0x{next(self._etags):015X}"'
        return _Blob(bytes(data), etag, md5, dict(metadata or {}), content_type, self.clock())

    def _signature(self, container_name: str, name: str, permission: str, expiry: str, disposition: str) -> str:
        message = "\n".join((self.url, container_name, name, permission, expiry, disposition)).encode()
        return base64.urlsafe_b64encode(hmac.new(self._key, message, hashlib.sha256).digest()).decode()

    def _sign(
        self, container_name: str, name: str, permission: BlobPermission, expires_on: datetime, disposition: str | None
    ) -> str:
        expiry = expires_on.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        query = {"sp": permission.value, "se": expiry}
        if disposition:
            query["rscd"] = disposition
        query["sig"] = self._signature(container_name, name, permission.value, expiry, disposition or "")
        return f"{self._url(container_name, name)}?{urlencode(query, quote_via=quote)}"

    def _url(self, container_name: str, name: str) -> str:
        return f"{self.url}/{container_name}/{quote(name, safe='/')}"

    def _resolve(self, url: str, needs: str) -> tuple[MemoryBlobAccount, str, str, dict[str, str]]:
        """The account, container and blob a URL names, if a caller holding it may do ``needs``
        (a permission letter) there: the account's own URLs need no signature (the caller is the
        account itself, as in a copy within it); others need a valid, unexpired one."""
        base, _, query_string = url.partition("?")
        account = next((known for prefix, known in self._accounts.items() if base.startswith(prefix + "/")), None)
        if account is None:
            raise PermissionError(f"{base} is not a blob of a known account")
        container_name, _, quoted = base[len(account.url) + 1 :].partition("/")
        name = unquote(quoted)
        query = {key: values[0] for key, values in parse_qs(query_string).items()}
        if account is not self or query:
            expected = account._signature(
                container_name, name, query.get("sp", ""), query.get("se", ""), query.get("rscd", "")
            )
            if not hmac.compare_digest(expected, query.get("sig", "")):
                raise PermissionError(f"{base}: the URL is not signed for this blob")
            if needs not in query.get("sp", ""):
                raise PermissionError(f"{base}: the URL does not allow this")
            if datetime.fromisoformat(query["se"].replace("Z", "+00:00")) <= account.clock():
                raise PermissionError(f"{base}: the URL has expired")
        return account, container_name, name, query

    # -- a plain HTTP request with a signed URL ---------------------------------------------------

    def read_url(self, url: str) -> tuple[bytes, dict[str, str]]:
        """What a GET of the URL answers: the content and its headers. ``PermissionError`` (403)
        unless it is signed for reading this blob and has not expired."""
        account, container_name, name, query = self._resolve(url, "r")
        if account is self and "sig" not in query:
            raise PermissionError(f"{url}: an anonymous request needs a signed URL")
        with account._lock:
            blob = account._blobs(container_name).get(name)
        if blob is None:
            raise BlobNotFound(f"{container_name}/{name} does not exist", error_type="BlobNotFound")
        headers = {"Content-Disposition": query["rscd"]} if "rscd" in query else {}
        return blob.data, headers

    def write_url(self, url: str, data: bytes) -> None:
        """What a PUT of a block blob to the URL does. ``PermissionError`` (403) unless it is signed
        for creating and writing this blob and has not expired."""
        account, container_name, name, query = self._resolve(url, "w")
        if "c" not in query.get("sp", "") or "sig" not in query:
            raise PermissionError(f"{url}: the URL does not allow creating the blob")
        account.store(container_name, create=False).put(name, data, overwrite=True)


class MemoryBlobStore:
    """One container of a ``MemoryBlobAccount``: Azure Blob Storage's behaviour where the core relies
    on it (see ``BlobStore``), without a network."""

    def __init__(self, account: MemoryBlobAccount, container_name: str, *, chunk_size: int = 4 * 1024 * 1024) -> None:
        self.account = account
        self.container_name = container_name
        self.account_url = account.url
        self._chunk_size = chunk_size

    def copy_source_url(self, name: str, destination: BlobStore) -> str:
        if destination.account_url == self.account_url:
            return self.url(name)
        return self.signed_url(name, BlobPermission.READ, self.account.clock() + timedelta(hours=2))

    def signed_url(
        self, name: str, permission: BlobPermission, expires_on: datetime, *, content_disposition: str | None = None
    ) -> str:
        return self.account._sign(self.container_name, name, permission, expires_on, content_disposition)

    def exists(self) -> bool:
        with self.account._lock:
            return self.container_name in self.account._containers

    def url(self, name: str) -> str:
        return self.account._url(self.container_name, name)

    def list(self, prefix: str, *, with_metadata: bool = False, page_size: int = 1000) -> Iterator[BlobInfo]:
        """Page by page, each page read when it is reached (as the service's continuation marker)."""
        after: str | None = None
        while True:
            with self.account._lock:
                blobs = self.account._blobs(self.container_name)
                names = sorted(n for n in blobs if n.startswith(prefix) and (after is None or n > after))[:page_size]
                page = [blobs[n].info(n, with_metadata=with_metadata) for n in names]
            yield from page
            if len(page) < page_size:
                return
            after = page[-1].name

    def info(self, name: str) -> BlobInfo | None:
        with self.account._lock:
            blobs = self.account._containers.get(self.container_name, {})
            blob = blobs.get(name)
            return blob.info(name) if blob is not None else None

    def _get(self, name: str, etag: str | None = None) -> _Blob:
        with self.account._lock:
            blob = self.account._blobs(self.container_name).get(name)
        if etag is not None and (blob is None or blob.etag != etag):
            raise SourceChanged(name)  # a condition on a missing blob fails as the condition (412)
        if blob is None:
            raise BlobNotFound(
                f"A storage container or blob that is needed does not exist ({self.container_name}/{name}).",
                error_type="BlobNotFound",
            )
        return blob

    def read_chunks(self, name: str, *, etag: str | None = None) -> Iterator[bytes]:
        data = self._get(name, etag).data
        for start in range(0, len(data), self._chunk_size):
            yield data[start : start + self._chunk_size]

    def read_bytes(self, name: str) -> bytes:
        return self._get(name).data

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        return self._get(name).data[offset : offset + length]

    def read_lines(self, name: str) -> Iterator[bytes]:
        return lines_of(self.read_chunks(name))

    def put(
        self,
        name: str,
        data: bytes,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = False,
    ) -> BlobInfo:
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()  # a single Put Blob gets a Content-MD5
        return self._write(name, self.account._new_blob(data, md5, metadata, content_type), overwrite=overwrite)

    def _write(self, name: str, blob: _Blob, *, overwrite: bool) -> BlobInfo:
        with self.account._lock:
            blobs = self.account._blobs(self.container_name)
            if not overwrite and name in blobs:
                raise BlobExists(f"{self.container_name}/{name} exists", error_type="BlobAlreadyExists")
            blobs[name] = blob
        return blob.info(name)

    def copy_from_url(
        self,
        name: str,
        source_url: str,
        *,
        source_etag: str | None = None,
        metadata: dict[str, str] | None = None,
        overwrite: bool = False,
    ) -> bool:
        try:
            account, container_name, source_name, _ = self.account._resolve(source_url, "r")
        except PermissionError as error:
            raise StorageFault(f"Storage failed: {error}", error_type="CannotVerifyCopySource") from error
        with account._lock:
            source = account._containers.get(container_name, {}).get(source_name)
        if source is None or (source_etag is not None and source.etag != source_etag):
            raise SourceChanged(source_url.split("?")[0])  # checked before the destination, as the service does
        with self.account._lock:
            blobs = self.account._containers.get(self.container_name)
            if blobs is None:
                raise SourceChanged(source_url.split("?")[0])  # the service's 404 does not say whose it is
            if not overwrite and name in blobs:
                return False
            copied = self.account._new_blob(
                source.data, source.md5, source.metadata if metadata is None else metadata, source.content_type
            )
            blobs[name] = copied
        return True

    def delete(self, name: str) -> bool:
        with self.account._lock:
            return self.account._containers.get(self.container_name, {}).pop(name, None) is not None

    def delete_prefix(self, prefix: str) -> int:
        return sum(self.delete(blob.name) for blob in list(self.list(prefix)))

    def writer(self, name: str, *, block_size: int, parallelism: int = 4) -> MemoryBlockWriter:
        return MemoryBlockWriter(self, name)


class MemoryBlockWriter:
    """Collects what is written; the blob appears, without a Content-MD5 (as after Put Block List),
    only on ``commit``."""

    def __init__(self, store: MemoryBlobStore, name: str) -> None:
        self.name = name
        self.size = 0
        self._store = store
        self._parts: list[bytes] = []
        self._sha256 = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def write(self, data: bytes) -> None:
        self._sha256.update(data)
        self.size += len(data)
        self._parts.append(bytes(data))

    def commit(
        self, *, metadata: dict[str, str] | None = None, content_type: str | None = None, overwrite: bool = True
    ) -> None:
        blob = self._store.account._new_blob(b"".join(self._parts), None, metadata, content_type)
        self._parts.clear()
        self._store._write(self.name, blob, overwrite=overwrite)

    def abort(self) -> None:
        self._parts.clear()


BlobFactory = Callable[[str | None, str], BlobStore]  # (account URL, None for our own; container) -> store
