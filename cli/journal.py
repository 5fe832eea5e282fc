"""What an upload has sent so far, kept on disk (~/.cache/appbackups/uploads, private to the user) until
the API accepts it, so that the same command resumes it after a failure or Ctrl-C: the same upload URL,
the blocks it staged skipped, while the URL lasts."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MARGIN = timedelta(minutes=10)  # an upload URL this close to its end is not worth resuming with


def cache_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "appbackups" / "uploads"


class UploadJournal:
    def __init__(self, file: Path, environment: str, comment: str, directory: Path | None = None) -> None:
        self.file = file.resolve()
        stat = self.file.stat()
        self.identity = {
            "file": str(self.file),
            "size": stat.st_size,
            "mtimeNs": stat.st_mtime_ns,
            "environment": environment,
            "comment": comment,
        }
        key = hashlib.sha256(f"{self.file}\n{environment}".encode()).hexdigest()[:32]
        self.path = (directory or cache_directory()) / f"{key}.json"
        self._lock = threading.Lock()
        self.data: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def resumable(self, now: datetime | None = None) -> bool:
        """An upload of this very file (same size and time) to the same environment, with the same comment,
        whose URL still has a while to go."""
        data = self.data
        if not data or any(data.get(key) != value for key, value in self.identity.items()):
            return False
        try:
            expires = datetime.fromisoformat(data["expiresOn"])
        except (KeyError, TypeError, ValueError):
            return False
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        return expires - MARGIN > (now or datetime.now(UTC))

    @property
    def upload_id(self) -> str:
        return str(self.data["uploadId"])

    @property
    def upload_url(self) -> str:
        return str(self.data["uploadUrl"])

    @property
    def block_size(self) -> int:
        return int(self.data["blockSize"])

    @property
    def staged(self) -> set[int]:
        return set(self.data.get("staged", []))

    def begin(self, upload_id: str, upload_url: str, expires_on: str, block_size: int) -> None:
        self.data = {
            **self.identity,
            "uploadId": upload_id,
            "uploadUrl": upload_url,
            "expiresOn": expires_on,
            "blockSize": block_size,
            "staged": [],
        }
        self._save()

    def record(self, index: int) -> None:
        """A block is staged (called from the upload's threads)."""
        with self._lock:
            self.data["staged"] = sorted({*self.data.get("staged", []), index})
            self._save()

    def restart(self) -> None:
        with self._lock:
            self.data["staged"] = []
            self._save()

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)

    def _save(self) -> None:
        """Written whole beside, then renamed over: a journal is never half-written. Only the user may read
        it: it holds the upload URL."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(self.path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(self.data, file)
        temporary.replace(self.path)
