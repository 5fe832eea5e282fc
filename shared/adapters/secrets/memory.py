"""The in-memory twin of the secret store (unit tests, and the services on in-memory storage)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from shared.adapters.secrets import SecretNotFound, SecretVersion, checked_name, whole_seconds
from shared.clock import Clock, utc_now


@dataclass(frozen=True)
class _Kept:
    about: SecretVersion
    value: str


class MemorySecretStore:
    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._secrets: dict[str, dict[str, _Kept]] = {}

    def store(self, name: str, value: str, *, tags: Mapping[str, str] | None = None) -> str:
        checked_name(name)
        version = uuid.uuid4().hex
        about = SecretVersion(name, version, whole_seconds(self._clock()), tags=dict(tags or {}))
        with self._lock:
            self._secrets.setdefault(name, {})[version] = _Kept(about, value)
        return version

    def _kept(self, name: str, version: str) -> _Kept:
        kept = self._secrets.get(name, {}).get(version)
        if kept is None:
            raise SecretNotFound(f"The secret {name} has no version {version}.")
        return kept

    def read(self, name: str, version: str) -> str:
        with self._lock:
            kept = self._kept(name, version)
        if not kept.about.enabled:
            raise SecretNotFound(f"The version {version} of the secret {name} is disabled.")
        return kept.value

    def valid_versions(self, name: str) -> list[SecretVersion]:
        now = self._clock()
        with self._lock:
            kept = list(self._secrets.get(name, {}).values())
        return [item.about for item in kept if item.about.valid_at(now)]

    def expire(self, name: str, version: str, on: datetime) -> None:
        with self._lock:
            kept = self._kept(name, version)
            self._secrets[name][version] = replace(kept, about=replace(kept.about, expires_on=whole_seconds(on)))

    def disable(self, name: str, version: str) -> None:
        with self._lock:
            kept = self._kept(name, version)
            self._secrets[name][version] = replace(kept, about=replace(kept.about, enabled=False))

    def values(self) -> list[str]:
        """Every value kept, of every version (tests look for them where they must not be)."""
        with self._lock:
            return [kept.value for versions in self._secrets.values() for kept in versions.values()]
