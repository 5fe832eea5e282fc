"""Archives to and from storage through SAS URLs, with azure-storage-blob: blocks in parallel, the SDK's
retries, and resume. A download goes on from the bytes on disk; an upload skips the blocks the caller
says are staged (an upload URL may write but not list, so cli/journal.py remembers them)."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Collection
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError
from azure.storage.blob import BlobClient, ExponentialRetry

from cli.client import FAILED, UNAVAILABLE, ApiError

BLOCK = 8 * 1024 * 1024  # an upload's block
CHUNK = 4 * 1024 * 1024  # a download's ranged GET
SEGMENT = 64 * 1024 * 1024  # a download is written segment after segment: resume starts at one's beginning
CONCURRENCY = 4
Progress = Callable[[int], None]


class StaleBlocks(ApiError):
    """The blocks said to be staged are not there (they expire a week after staging): send them all."""


def blob_client(url: str, **options: Any) -> BlobClient:
    """A client of the one blob a SAS URL names, retrying what fails on the way (about 2, 4, 6, 10 and 18 s
    apart); ``options`` (the SDK's: transport, retry_policy, …) over these."""
    settings: dict[str, Any] = {
        "retry_policy": ExponentialRetry(initial_backoff=2, increment_base=2, retry_total=5),
        "connection_timeout": 30,
        "read_timeout": 300,
        "max_single_get_size": CHUNK,
        "max_chunk_get_size": CHUNK,
    }
    return BlobClient.from_blob_url(url, **{**settings, **options})


def _failure(what: str, error: AzureError) -> ApiError:
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        code = UNAVAILABLE if error.status_code >= 500 else FAILED
        return ApiError(f"{what} failed: {error.status_code} {error.reason}", exit_code=code)
    return ApiError(f"{what} failed: storage cannot be reached ({error.__class__.__name__})", exit_code=UNAVAILABLE)


def block_id(index: int, block_size: int) -> str:
    """The same for the same block of the same upload in every run; all of one length, as Azure wants."""
    return base64.b64encode(f"{index:08d}.{block_size:010d}".encode()).decode()


def block_count(size: int, block_size: int) -> int:
    return max(1, -(-size // block_size))


def upload_file(
    url: str,
    path: Path,
    on_progress: Progress,
    *,
    block_size: int = BLOCK,
    concurrency: int = CONCURRENCY,
    staged: Collection[int] = (),
    on_staged: Callable[[int], None] | None = None,
    client: BlobClient | None = None,
) -> None:
    """Put the file to a write-only SAS URL: one Put Blob when it fits a block, else its blocks
    (``concurrency`` at a time, each retried by the SDK) but those already ``staged``, then the block list."""
    blob = client or blob_client(url)
    size = path.stat().st_size
    try:
        if size <= block_size and not staged:
            with path.open("rb") as file:
                blob.upload_blob(file, length=size, overwrite=True)
            on_progress(size)
            return
        count = block_count(size, block_size)

        def send(index: int) -> None:
            with path.open("rb") as file:
                file.seek(index * block_size)
                data = file.read(block_size)
            blob.stage_block(block_id(index, block_size), data, length=len(data))
            if on_staged is not None:
                on_staged(index)
            on_progress(len(data))

        pool = ThreadPoolExecutor(concurrency, thread_name_prefix="upload")
        try:
            futures = [pool.submit(send, index) for index in range(count) if index not in staged]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()
        finally:  # on an error or Ctrl-C, the blocks being sent finish (and are recorded); no new one starts
            pool.shutdown(wait=True, cancel_futures=True)
        try:
            blob.commit_block_list([block_id(index, block_size) for index in range(count)])
        except HttpResponseError as error:
            if error.error_code == "InvalidBlockList" and staged:
                raise StaleBlocks("the blocks sent before are gone") from error
            raise
    except AzureError as error:
        raise _failure("upload", error) from error


def resume_offset(have: int, total: int) -> int:
    """Where a download goes on from ``have`` bytes on disk: the start of the segment it was writing, whose
    chunks may have come in out of order (earlier segments are whole: one starts when the last is done)."""
    if have <= 0 or have > total:
        return 0
    return ((have - 1) // SEGMENT) * SEGMENT


def download_file(
    url: str,
    target: Path,
    on_start: Callable[[int | None], None],
    on_progress: Progress,
    *,
    sha256: str | None = None,
    concurrency: int = CONCURRENCY,
    client: BlobClient | None = None,
) -> None:
    """Get a read-only SAS URL into ``target``: written to ``target.part`` first (which a later call goes on
    from), checked against ``sha256`` when given, then renamed. Nothing is written when the blob cannot be read."""
    partial = target.with_name(target.name + ".part")
    blob = client or blob_client(url)
    try:
        properties = blob.get_blob_properties()
        total = int(properties.size)
        offset = resume_offset(partial.stat().st_size if partial.exists() else 0, total)
        on_start(total)
        if offset:
            on_progress(offset)
        with partial.open("r+b" if partial.exists() else "wb") as file:
            file.truncate(offset)
            lock = threading.Lock()
            while offset < total:
                length = min(SEGMENT, total - offset)
                seen = [0]

                def hook(current: int, _total: int | None, seen: list[int] = seen) -> None:
                    with lock:
                        step, seen[0] = current - seen[0], max(seen[0], current)
                    if step > 0:
                        on_progress(step)

                file.seek(offset)
                blob.download_blob(
                    offset=offset,
                    length=length,
                    max_concurrency=concurrency,
                    etag=properties.etag,
                    match_condition=MatchConditions.IfNotModified,
                    progress_hook=hook,
                ).readinto(file)
                offset += length
    except AzureError as error:
        raise _failure("download", error) from error
    if sha256 and _sha256(partial) != sha256.lower():
        partial.unlink()
        raise ApiError("download failed: what arrived is not the archive (its SHA-256 differs); run it again")
    partial.replace(target)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
