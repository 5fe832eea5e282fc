"""Moving archives to and from storage through SAS URLs, in blocks, with progress."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

import requests

from cli.client import FAILED, UNAVAILABLE, ApiError

BLOCK = 8 * 1024 * 1024
Progress = Callable[[int], None]


def _check(response: requests.Response, what: str) -> None:
    if response.status_code >= 400:
        code = UNAVAILABLE if response.status_code >= 500 else FAILED
        raise ApiError(f"{what} failed: {response.status_code} {response.reason}", exit_code=code)


def upload_file(url: str, path: Path, on_progress: Progress, *, block_size: int = BLOCK) -> None:
    """PUT the file to a write-only SAS URL: one Put Blob when small, else Put Block per block and a
    Put Block List (only what the SAS allows: create and write on that one blob)."""
    session = requests.Session()
    size = path.stat().st_size
    separator = "&" if "?" in url else "?"
    try:
        with path.open("rb") as file:
            if size <= block_size:
                content = file.read()
                _check(session.put(url, data=content, headers={"x-ms-blob-type": "BlockBlob"}, timeout=600), "upload")
                on_progress(len(content))
                return
            ids = []
            while chunk := file.read(block_size):
                block_id = base64.b64encode(f"{len(ids):08d}".encode()).decode()
                ids.append(block_id)
                response = session.put(
                    f"{url}{separator}comp=block&blockid={requests.utils.quote(block_id, safe='')}",
                    data=chunk,
                    timeout=600,
                )
                _check(response, "upload of a block")
                on_progress(len(chunk))
            body = "<?xml version='1.0' encoding='utf-8'?><BlockList>"
            body += "".join(f"<Latest>{escape(block_id)}</Latest>" for block_id in ids) + "</BlockList>"
            _check(session.put(f"{url}{separator}comp=blocklist", data=body.encode(), timeout=600), "upload commit")
    except requests.RequestException as error:
        raise ApiError(f"upload to storage failed: {error.__class__.__name__}", exit_code=UNAVAILABLE) from error


def download_file(url: str, target: Path, on_start: Callable[[int | None], None], on_progress: Progress) -> None:
    """GET a read-only SAS URL into ``target`` (written beside it first, then renamed)."""
    partial = target.with_name(target.name + ".part")
    try:
        with requests.get(url, stream=True, timeout=600) as response:
            _check(response, "download")
            length = response.headers.get("Content-Length")
            on_start(int(length) if length else None)
            with partial.open("wb") as file:
                for chunk in response.iter_content(1024 * 1024):
                    file.write(chunk)
                    on_progress(len(chunk))
        partial.replace(target)
    except requests.RequestException as error:
        partial.unlink(missing_ok=True)
        raise ApiError(f"download from storage failed: {error.__class__.__name__}", exit_code=UNAVAILABLE) from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
