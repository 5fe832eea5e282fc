"""Blob Storage seam: listing in name order, streamed reads, server-side copies that never
overwrite, and block-staged writes with bounded memory. ``BlobStore`` is what the core needs;
``AzureBlobStore`` is Azure Blob Storage, raising only the project's errors (``shared.adapters.errors``)."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Protocol

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
            client.upload_blob(
                data,
                overwrite=overwrite,
                metadata=metadata,
                content_settings=ContentSettings(content_type=content_type) if content_type else None,
            )
        except ResourceExistsError as error:
            raise BlobExists(f"{self.container_name}/{name} exists") from error
        except AzureError as error:
            raise storage_fault(error, BlobNotFound) from error
        info = self.info(name)
        if info is None:
            raise BlobNotFound(f"{self.container_name}/{name} vanished as it was written")
        return info

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
