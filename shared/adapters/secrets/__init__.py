"""Secret store seam: named secrets kept in versions, as Azure Key Vault keeps them — a new value is a new
version, a version is read by its id, and an old version is expired (at an instant) or disabled. Three
implementations: Key Vault (``keyvault.py``, the deployed app), a blob container of the development storage
account (``local.py``, the development host without a vault) and an in-memory twin (``memory.py``), held to
the same behaviour by tests/integration/test_secret_store_contract.py."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from shared.adapters.errors import StorageFault, StorageNotFound

# Key Vault's rule for secret names (the other stores hold to it, so a name that works locally works in Azure).
_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")


class SecretNotFound(StorageNotFound):
    """No such secret or version, or the version is disabled: its value cannot be read."""


class SecretStoreFault(StorageFault):
    """The secret store did not answer as expected (unreachable, throttled, refusing): trying again may help."""


@dataclass(frozen=True)
class SecretVersion:
    """One version of a secret, without its value."""

    name: str
    version: str
    created_on: datetime
    enabled: bool = True
    expires_on: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def valid_at(self, now: datetime) -> bool:
        return self.enabled and (self.expires_on is None or self.expires_on > now)


class SecretStore(Protocol):
    """Named secrets in versions. Instants are whole seconds (Key Vault keeps its attributes so)."""

    def store(self, name: str, value: str, *, tags: Mapping[str, str] | None = None) -> str:
        """Keep ``value`` as a new, enabled version of the secret ``name`` (created if new); its version id."""
        ...

    def read(self, name: str, version: str) -> str:
        """The value of that version. ``SecretNotFound`` when the name or version is unknown or the version is
        disabled. (Key Vault still answers an expired version's value; nothing here relies on either answer.)"""
        ...

    def valid_versions(self, name: str) -> list[SecretVersion]:
        """The versions of ``name`` that are enabled and not expired now (in no promised order); none for an
        unknown name."""
        ...

    def expire(self, name: str, version: str, on: datetime) -> None:
        """The version stops being valid at ``on`` (Key Vault's expiry attribute). ``SecretNotFound`` when unknown."""
        ...

    def disable(self, name: str, version: str) -> None:
        """The version is no longer valid nor readable. ``SecretNotFound`` when unknown; disabling twice is no error."""
        ...


def checked_name(name: str) -> str:
    """``name`` when Key Vault accepts it as a secret name (letters, digits and hyphens, 1 to 127), else ValueError."""
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a secret name: 1 to 127 letters, digits and hyphens")
    return name


def whole_seconds(instant: datetime) -> datetime:
    """The instant as the stores keep it: UTC, to the second."""
    return instant.astimezone(UTC).replace(microsecond=0)


class UnconfiguredSecretStore:
    """Where no secret store may be used (the app in Azure without a Key Vault setting): every call is refused
    with the reason, so that nothing is signed, or kept, anywhere else."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def _refuse(self) -> SecretStoreFault:
        return SecretStoreFault(self._reason, transient=False)

    def store(self, name: str, value: str, *, tags: Mapping[str, str] | None = None) -> str:
        raise self._refuse()

    def read(self, name: str, version: str) -> str:
        raise self._refuse()

    def valid_versions(self, name: str) -> list[SecretVersion]:
        raise self._refuse()

    def expire(self, name: str, version: str, on: datetime) -> None:
        raise self._refuse()

    def disable(self, name: str, version: str) -> None:
        raise self._refuse()
