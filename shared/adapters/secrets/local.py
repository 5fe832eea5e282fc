"""The secret store of the development host, when no Key Vault is configured: a blob container of its own in
the development storage account (Azurite), one JSON blob per secret holding its versions, each write guarded
by the blob's ETag so that concurrent writers never lose a version. Never the catalog tables. The values are
plain text in Azurite's data folder: a store for local development, not for Azure (docs/decisions/0014)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings

from shared.adapters.secrets import SecretNotFound, SecretStoreFault, SecretVersion, checked_name, whole_seconds
from shared.clock import Clock, utc_now

CONTAINER = "webhook-secrets"  # created on first write; not provisioned in Azure, where Key Vault holds them
_WRITE_ATTEMPTS = 16

Versions = dict[str, dict[str, Any]]  # version id -> {"value", "created", "enabled", "expires", "tags"}


def _fault(error: AzureError) -> SecretStoreFault:
    first = str(error).splitlines()[0] if str(error) else ""
    return SecretStoreFault(f"The local secret store failed: {type(error).__name__}: {first}".strip())


class LocalSecretStore:
    def __init__(self, container: ContainerClient, clock: Clock = utc_now) -> None:
        self._container = container
        self._clock = clock

    def _blob_name(self, name: str) -> str:
        return f"{checked_name(name)}.json"

    def _load(self, name: str) -> tuple[Versions, str | None]:
        """The versions of ``name`` and the ETag of its blob (None: no blob yet)."""
        blob = self._container.get_blob_client(self._blob_name(name))
        try:
            downloader = blob.download_blob()
            document = json.loads(downloader.readall())
        except ResourceNotFoundError:  # the blob, or the whole container, is not there yet
            return {}, None
        except AzureError as error:
            raise _fault(error) from error
        return document["versions"], downloader.properties.etag

    def _change(self, name: str, change: Callable[[Versions], None]) -> None:
        """Apply ``change`` to the versions as they are now and write them back, again if another writer was
        first (the blob's ETag)."""
        blob = self._container.get_blob_client(self._blob_name(name))
        for _ in range(_WRITE_ATTEMPTS):
            versions, etag = self._load(name)
            change(versions)
            data = json.dumps({"versions": versions}, sort_keys=True).encode("utf-8")
            settings = ContentSettings(content_type="application/json")
            try:
                if etag is None:
                    blob.upload_blob(data, overwrite=False, content_settings=settings)
                else:
                    blob.upload_blob(
                        data,
                        overwrite=True,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                        content_settings=settings,
                    )
                return
            except (ResourceExistsError, ResourceModifiedError):
                continue  # another writer was first: read again
            except ResourceNotFoundError as error:
                if getattr(error, "error_code", None) != "ContainerNotFound":
                    raise _fault(error) from error
                self._create_container()
            except AzureError as error:
                raise _fault(error) from error
        raise SecretStoreFault(f"The local secret store could not write {name}: too many concurrent writers.")

    def _create_container(self) -> None:
        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        except AzureError as error:
            raise _fault(error) from error

    def store(self, name: str, value: str, *, tags: Mapping[str, str] | None = None) -> str:
        version = uuid.uuid4().hex
        created = whole_seconds(self._clock()).isoformat()

        def add(versions: Versions) -> None:
            versions[version] = {
                "value": value,
                "created": created,
                "enabled": True,
                "expires": None,
                "tags": dict(tags or {}),
            }

        self._change(name, add)
        return version

    def read(self, name: str, version: str) -> str:
        kept = self._load(name)[0].get(version)
        if kept is None:
            raise SecretNotFound(f"The secret {name} has no version {version}.")
        if not kept["enabled"]:
            raise SecretNotFound(f"The version {version} of the secret {name} is disabled.")
        return str(kept["value"])

    def valid_versions(self, name: str) -> list[SecretVersion]:
        now = self._clock()
        versions = self._load(name)[0]
        about = [
            SecretVersion(
                name,
                version,
                datetime.fromisoformat(kept["created"]),
                enabled=kept["enabled"],
                expires_on=datetime.fromisoformat(kept["expires"]) if kept["expires"] else None,
                tags=dict(kept["tags"]),
            )
            for version, kept in versions.items()
        ]
        return [item for item in about if item.valid_at(now)]

    def _update(self, name: str, version: str, attributes: dict[str, Any]) -> None:
        def update(versions: Versions) -> None:
            if version not in versions:
                raise SecretNotFound(f"The secret {name} has no version {version}.")
            versions[version].update(attributes)

        self._change(name, update)

    def expire(self, name: str, version: str, on: datetime) -> None:
        self._update(name, version, {"expires": whole_seconds(on).isoformat()})

    def disable(self, name: str, version: str) -> None:
        self._update(name, version, {"enabled": False})
