"""Blob Storage seam: listing in name order, streamed reads, server-side copies that never
overwrite, and block-staged writes with bounded memory."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import (
    BlobBlock,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContentSettings,
    generate_blob_sas,
)

from shared.faults import Fault


class BlobCopyFailed(Fault):
    """The service reported a failed or aborted copy."""

    transient = True


class SourceChanged(Fault):
    """The source blob changed (or vanished) while we were reading or copying it."""

    transient = True


@dataclass(frozen=True)
class BlobInfo:
    name: str
    size: int
    etag: str
    md5: str | None  # hex Content-MD5, when the service has one
    metadata: dict[str, str] = field(default_factory=dict)
    last_modified: datetime | None = None


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
                self._delegation_key = self._service.get_user_delegation_key(start, expiry)
                self._delegation_expiry = expiry
            return self._delegation_key

    def sign(
        self,
        container_name: str,
        blob_name: str,
        permission: BlobSasPermissions,
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
            "permission": permission,
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


class BlobStore:
    """One container of one storage account."""

    def __init__(self, service: BlobServiceClient, container_name: str, signer: UrlSigner | None = None) -> None:
        self._container = service.get_container_client(container_name)
        self._signer = signer or UrlSigner(service)
        self.container_name = container_name
        self.account_url = service.url.rstrip("/")

    def copy_source_url(self, name: str, destination: BlobStore) -> str:
        """The URL ``destination`` copies ``name`` from: plain within one account (the copy request's
        own authorization covers the source), a short read-only SAS across accounts."""
        if destination.account_url == self.account_url:
            return self.url(name)
        return self.signed_url(name, BlobSasPermissions(read=True), datetime.now(UTC) + timedelta(hours=2))

    def signed_url(
        self, name: str, permission: BlobSasPermissions, expires_on: datetime, *, content_disposition: str | None = None
    ) -> str:
        return self._signer.sign(
            self.container_name, name, permission, expires_on, content_disposition=content_disposition
        )

    def exists(self) -> bool:
        return self._container.exists()

    def url(self, name: str) -> str:
        return self._container.get_blob_client(name).url

    def list(self, prefix: str, *, with_metadata: bool = False, page_size: int = 1000) -> Iterator[BlobInfo]:
        """Blobs under ``prefix`` in name order (the service lists in byte order of the name)."""
        include = ["metadata"] if with_metadata else None
        for properties in self._container.list_blobs(
            name_starts_with=prefix, include=include, results_per_page=page_size
        ):
            yield _info(properties)

    def info(self, name: str) -> BlobInfo | None:
        try:
            return _info(self._container.get_blob_client(name).get_blob_properties())
        except ResourceNotFoundError:
            return None

    def read_chunks(self, name: str, *, etag: str | None = None) -> Iterator[bytes]:
        """The blob's content in chunks (of the client's chunk size), only the version ``etag`` if given."""
        conditions = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
        try:
            yield from self._container.get_blob_client(name).download_blob(max_concurrency=1, **conditions).chunks()
        except ResourceModifiedError as error:
            raise SourceChanged(name) from error

    def read_bytes(self, name: str) -> bytes:
        return self._container.get_blob_client(name).download_blob().readall()

    def read_lines(self, name: str) -> Iterator[bytes]:
        """The blob's lines, streamed."""
        pending = b""
        for chunk in self.read_chunks(name):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from lines
        if pending:
            yield pending

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
        client.upload_blob(
            data,
            overwrite=overwrite,
            metadata=metadata,
            content_settings=ContentSettings(content_type=content_type) if content_type else None,
        )
        info = self.info(name)
        assert info is not None
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
        """Server-side copy into ``name``. Unless ``overwrite``, an existing blob is left as it is
        (our own objects are never rewritten). Returns True when this call wrote the blob."""
        client = self._container.get_blob_client(name)
        conditions: dict[str, object] = {} if overwrite else {"match_condition": MatchConditions.IfMissing}
        if source_etag:
            conditions.update(source_etag=source_etag, source_match_condition=MatchConditions.IfNotModified)
        try:
            result = client.start_copy_from_url(source_url, metadata=metadata, **conditions)
        except ResourceExistsError:
            return False
        except ResourceModifiedError as error:
            raise SourceChanged(source_url.split("?")[0]) from error
        except ResourceNotFoundError as error:
            raise SourceChanged(source_url.split("?")[0]) from error
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
        return True

    def delete(self, name: str) -> bool:
        try:
            self._container.delete_blob(name, delete_snapshots="include")
        except ResourceNotFoundError:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for blob in self._container.list_blobs(name_starts_with=prefix):
            count += self.delete(blob.name)
        return count

    def writer(self, name: str, *, block_size: int, parallelism: int = 4) -> BlockWriter:
        return BlockWriter(self._container, name, block_size=block_size, parallelism=parallelism)


class BlockWriter:
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

    def _stage(self, chunk: bytes) -> None:
        for future in self._staged:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        block_id = base64.b64encode(f"{len(self._blocks):08d}".encode()).decode()
        self._blocks.append(BlobBlock(block_id=block_id))
        self._slots.acquire()
        future = self._pool.submit(self._client.stage_block, block_id, chunk, length=len(chunk))
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
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Drop what was staged: uncommitted blocks are never visible and the service discards them."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._buffer.clear()
