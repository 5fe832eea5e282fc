"""Who is calling: the principal App Service Authentication (Easy Auth) puts in the request headers."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from shared.domain.access import LOCAL_DEVELOPER, Principal
from shared.errors import Unauthenticated

PRINCIPAL_HEADER = "x-ms-client-principal"
PRINCIPAL_ID_HEADER = "x-ms-client-principal-id"
PRINCIPAL_NAME_HEADER = "x-ms-client-principal-name"
PRINCIPAL_IDP_HEADER = "x-ms-client-principal-idp"

_OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_NAME_CLAIMS = ("name", "preferred_username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")


def _decode_client_principal(encoded: str) -> dict[str, Any]:
    try:
        document = json.loads(base64.b64decode(encoded, validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise Unauthenticated(
            "The X-MS-CLIENT-PRINCIPAL header is not base64-encoded JSON.", code="malformed_principal"
        ) from error
    if not isinstance(document, dict) or not isinstance(document.get("claims", []), list):
        raise Unauthenticated("The X-MS-CLIENT-PRINCIPAL header is not a client principal.", code="malformed_principal")
    return document


def _claims(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    claims: list[tuple[str, str]] = []
    for claim in document.get("claims", []):
        if (
            not isinstance(claim, dict)
            or not isinstance(claim.get("typ"), str)
            or not isinstance(claim.get("val"), str)
        ):
            raise Unauthenticated("The X-MS-CLIENT-PRINCIPAL header has a malformed claim.", code="malformed_principal")
        claims.append((claim["typ"], claim["val"]))
    return claims


def principal_from_headers(headers: Mapping[str, str], *, development_mode: bool) -> Principal:
    """The caller's principal. Easy Auth sets the headers in Azure; in development mode the same
    headers are accepted and a local developer principal stands in when they are absent."""
    lowered = {key.lower(): value for key, value in headers.items()}
    encoded = lowered.get(PRINCIPAL_HEADER)
    principal_id = (lowered.get(PRINCIPAL_ID_HEADER) or "").strip()
    if not encoded and not principal_id:
        if development_mode:
            return LOCAL_DEVELOPER
        raise Unauthenticated("The request carries no authenticated principal.", code="no_principal")

    name = (lowered.get(PRINCIPAL_NAME_HEADER) or "").strip()
    provider = (lowered.get(PRINCIPAL_IDP_HEADER) or "").strip()
    roles: set[str] = set()
    if encoded:
        document = _decode_client_principal(encoded)
        claims = _claims(document)
        role_type = document.get("role_typ") or "roles"
        name_type = document.get("name_typ")
        roles = {value for typ, value in claims if typ in (role_type, "roles")}
        by_type = dict(claims)
        principal_id = principal_id or next((by_type[t] for t in _OBJECT_ID_CLAIMS if t in by_type), "")
        name = name or next((by_type[t] for t in (name_type, *_NAME_CLAIMS) if t and t in by_type), "")
        provider = provider or str(document.get("auth_typ") or "")
    if not principal_id:
        raise Unauthenticated("The client principal has no object id.", code="malformed_principal")
    return Principal(
        id=principal_id, name=name or principal_id, identity_provider=provider or "aad", roles=frozenset(roles)
    )
