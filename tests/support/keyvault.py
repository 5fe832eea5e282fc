"""A fake Azure Key Vault at the HTTP transport seam, for the Key Vault secret store's tests.

This is NOT Key Vault. No vault exists on this machine, so ``FakeKeyVault`` answers, in memory, the few
requests of the secrets REST API that ``KeyVaultSecretStore`` makes — and nothing else:

- ``PUT /secrets/{name}`` (set secret: a new enabled version, 32 hex digits),
- ``GET /secrets/{name}/{version}`` (get a version; 404 ``SecretNotFound`` when unknown, 403 ``Forbidden`` /
  ``SecretDisabled`` when disabled; an expired version is still answered, as the real vault does for secrets),
- ``GET /secrets/{name}/versions`` (list versions, at most ``maxresults`` (25) per page, then a ``nextLink``;
  an unknown name lists nothing),
- ``PATCH /secrets/{name}/{version}`` (update attributes: ``enabled``, ``exp``),

each only with the bearer token its credential hands out, after the challenge a vault answers an
unauthenticated request with (401 and ``WWW-Authenticate``), which the SDK's challenge policy sends first.
Names are checked as the vault checks them (400 ``BadParameter``); instants are Unix seconds. Any other
request is answered 501 so that a new call of the adapter fails here instead of passing unseen.
The shapes follow the REST reference (learn.microsoft.com/rest/api/keyvault/secrets); where the reference is
silent (the listing of a name that never existed) it is a guess, and the adapter accepts both answers.

It sits under the SDK's real transport (azure-core's ``RequestsTransport`` with a ``requests`` session whose
adapter is this fake), so the SDK's pipeline — challenge authentication, serialization, paging, retries,
error mapping — runs as it does against a vault; only the wire is replaced.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
import urllib3
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter

TENANT = "00000000-0000-0000-0000-0000000000aa"
TOKEN = "fake-key-vault-token"  # what the fake credential hands out and the fake vault expects
_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
PAGE = 25  # the vault's largest page of a listing


class FakeCredential:
    """Hands out one bearer token for the vault's scope; records what it was asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)


@dataclass
class _Version:
    value: str
    created: int
    enabled: bool = True
    exp: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    updated: int = 0


class FakeKeyVault(HTTPAdapter):
    def __init__(
        self, vault_url: str = "https://appbackups-test.vault.azure.net", clock: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__()
        self.vault_url = vault_url.rstrip("/")
        self._clock = clock
        self._lock = threading.Lock()
        self._secrets: dict[str, dict[str, _Version]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of each authenticated request
        self.fail_next: list[int] = []  # statuses to answer the next requests with (e.g. 503), before serving

    def transport(self) -> RequestsTransport:
        """azure-core's own transport, on a session whose wire is this fake."""
        session = requests.Session()
        session.trust_env = False
        session.mount("https://", self)
        return RequestsTransport(session=session, session_owner=True)

    def values(self) -> list[str]:
        with self._lock:
            return [kept.value for versions in self._secrets.values() for kept in versions.values()]

    # -- the wire --------------------------------------------------------------------------------

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        query = parse_qs(parts.query)
        method = (request.method or "").upper()
        if f"{parts.scheme}://{parts.netloc}" != self.vault_url:
            return self._answer(request, 404, _error("NotFound", f"No vault at {parts.netloc}."))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", resource="https://vault.azure.net"'
            )
            missing = _error("Unauthorized", "AKV10000: Request is missing a Bearer token.")
            return self._answer(request, 401, missing, {"WWW-Authenticate": challenge})
        if not query.get("api-version"):
            return self._answer(request, 400, _error("BadParameter", "The api-version query parameter is missing."))
        with self._lock:
            self.requests.append((method, parts.path))
            if self.fail_next:
                status = self.fail_next.pop(0)
                return self._answer(request, status, _error("ServiceUnavailable", "The fake vault was told to fail."))
            status, body = self._serve(method, parts.path, query, _json(request.body))
        return self._answer(request, status, body)

    def _serve(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> tuple[int, Any]:
        segments = [segment for segment in path.split("/") if segment]
        if not segments or segments[0] != "secrets" or len(segments) not in (2, 3):
            return 501, _error("NotImplemented", f"The fake vault does not serve {method} {path}.")
        name = segments[1]
        if not _NAME.match(name):
            return 400, _error("BadParameter", f"The request URI contains an invalid name: {name}")
        if len(segments) == 2 and method == "PUT":
            return self._set(name, body)
        if len(segments) == 3 and segments[2] == "versions" and method == "GET":
            return self._list(name, query)
        if len(segments) == 3 and method == "GET":
            return self._get(name, segments[2])
        if len(segments) == 3 and method == "PATCH":
            return self._update(name, segments[2], body)
        return 501, _error("NotImplemented", f"The fake vault does not serve {method} {path}.")

    def _now(self) -> int:
        return int((self._clock() if self._clock else datetime.now(UTC)).timestamp())

    def _set(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        if not isinstance(body.get("value"), str):
            return 400, _error("BadParameter", "Property value is required.")
        attributes = body.get("attributes") or {}
        now = self._now()
        version = uuid.uuid4().hex
        kept = _Version(
            value=body["value"],
            created=now,
            updated=now,
            enabled=attributes.get("enabled", True) is not False,
            exp=attributes.get("exp"),
            tags=dict(body.get("tags") or {}),
        )
        self._secrets.setdefault(name, {})[version] = kept
        return 200, self._bundle(name, version, kept, with_value=True)

    def _get(self, name: str, version: str) -> tuple[int, Any]:
        kept = self._secrets.get(name, {}).get(version)
        if kept is None:
            return 404, _not_found(name, version)
        if not kept.enabled:
            return 403, _error(
                "Forbidden", "Operation get is not allowed on a disabled secret.", inner="SecretDisabled"
            )
        return 200, self._bundle(name, version, kept, with_value=True)

    def _list(self, name: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        size = min(int((query.get("maxresults") or [PAGE])[0]), PAGE)
        start = int((query.get("$skiptoken") or ["0"])[0])
        versions = list(self._secrets.get(name, {}).items())
        page = versions[start : start + size]
        following = start + size
        next_link = None
        if following < len(versions):
            api_version = (query.get("api-version") or [""])[0]
            parameters = urlencode({"api-version": api_version, "maxresults": size, "$skiptoken": following})
            next_link = f"{self.vault_url}/secrets/{name}/versions?{parameters}"
        items = [self._bundle(name, version, kept, with_value=False) for version, kept in page]
        return 200, {"value": items, "nextLink": next_link}

    def _update(self, name: str, version: str, body: dict[str, Any]) -> tuple[int, Any]:
        kept = self._secrets.get(name, {}).get(version)
        if kept is None:
            return 404, _not_found(name, version)
        attributes = body.get("attributes") or {}
        if "enabled" in attributes and attributes["enabled"] is not None:
            kept.enabled = bool(attributes["enabled"])
        if "exp" in attributes and attributes["exp"] is not None:
            kept.exp = int(attributes["exp"])
        if body.get("tags") is not None:
            kept.tags = dict(body["tags"])
        kept.updated = self._now()
        return 200, self._bundle(name, version, kept, with_value=False)

    def _bundle(self, name: str, version: str, kept: _Version, *, with_value: bool) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "enabled": kept.enabled,
            "created": kept.created,
            "updated": kept.updated,
            "recoveryLevel": "Recoverable",
            "recoverableDays": 90,
        }
        if kept.exp is not None:
            attributes["exp"] = kept.exp
        bundle: dict[str, Any] = {"id": f"{self.vault_url}/secrets/{name}/{version}", "attributes": attributes}
        if kept.tags:
            bundle["tags"] = kept.tags
        if with_value:
            bundle["value"] = kept.value
        return bundle

    def _answer(
        self, request: requests.PreparedRequest, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> requests.Response:
        data = json.dumps(body).encode("utf-8") if body is not None else b""
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(data),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Content-Length": str(len(data)),
                **(headers or {}),
            },
            status=status,
            reason=_REASONS.get(status, "Error"),
            preload_content=False,
            decode_content=False,
        )
        return self.build_response(request, raw)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    501: "Not Implemented",
    503: "Service Unavailable",
}


def _json(body: bytes | str | None) -> dict[str, Any]:
    if not body:
        return {}
    document = json.loads(body)
    return document if isinstance(document, dict) else {}


def _error(code: str, message: str, *, inner: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return {"error": error}


def _not_found(name: str, version: str) -> dict[str, Any]:
    return _error("SecretNotFound", f"A secret with (name/id) {name}/{version} was not found in this key vault.")
