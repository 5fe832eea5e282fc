"""The secret store of the deployed app: Azure Key Vault, through ``azure-keyvault-secrets``' SecretClient
(built once by shared/clients.py, signed in with the app's managed identity, which holds Key Vault Secrets
Officer on the vault). Four calls: set a secret, get a version, list the versions, update a version's
attributes. Validity is the vault's own attributes (enabled, expiry) read against our clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient, SecretProperties

from shared.adapters.secrets import SecretNotFound, SecretStoreFault, SecretVersion, checked_name, whole_seconds
from shared.clock import Clock, utc_now


def _translated(error: AzureError, name: str, version: str = "") -> Exception:
    what = f"version {version} of the secret {name}" if version else f"the secret {name}"
    if isinstance(error, ResourceNotFoundError):
        return SecretNotFound(f"Key Vault does not have {what}.")
    if isinstance(error, HttpResponseError) and error.status_code == 403 and "disabled" in str(error.message).lower():
        return SecretNotFound(f"Key Vault refuses to read {what}: it is disabled.")
    first = str(error).splitlines()[0] if str(error) else ""
    return SecretStoreFault(f"Key Vault failed on {what}: {type(error).__name__}: {first}".strip())


def _version_of(properties: SecretProperties) -> SecretVersion:
    return SecretVersion(
        name=str(properties.name),
        version=str(properties.version),
        created_on=properties.created_on or datetime.min,
        enabled=bool(properties.enabled),
        expires_on=properties.expires_on,
        tags=dict(properties.tags or {}),
    )


class KeyVaultSecretStore:
    def __init__(self, client: SecretClient, clock: Clock = utc_now) -> None:
        self._client = client
        self._clock = clock

    @property
    def vault_url(self) -> str:
        return self._client.vault_url

    def store(self, name: str, value: str, *, tags: Mapping[str, str] | None = None) -> str:
        checked_name(name)
        try:
            secret = self._client.set_secret(name, value, enabled=True, tags=dict(tags or {}) or None)
        except AzureError as error:
            raise _translated(error, name) from error
        return str(secret.properties.version)

    def read(self, name: str, version: str) -> str:
        checked_name(name)
        try:
            secret = self._client.get_secret(name, version)
        except AzureError as error:
            raise _translated(error, name, version) from error
        return secret.value or ""

    def valid_versions(self, name: str) -> list[SecretVersion]:
        checked_name(name)
        now = self._clock()
        try:
            listed = [_version_of(properties) for properties in self._client.list_properties_of_secret_versions(name)]
        except ResourceNotFoundError:
            return []
        except AzureError as error:
            raise _translated(error, name) from error
        return [version for version in listed if version.valid_at(now)]

    def expire(self, name: str, version: str, on: datetime) -> None:
        checked_name(name)
        try:
            self._client.update_secret_properties(name, version, expires_on=whole_seconds(on))
        except AzureError as error:
            raise _translated(error, name, version) from error

    def disable(self, name: str, version: str) -> None:
        checked_name(name)
        try:
            self._client.update_secret_properties(name, version, enabled=False)
        except AzureError as error:
            raise _translated(error, name, version) from error
