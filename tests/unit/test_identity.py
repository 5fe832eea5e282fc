import base64
import json

import pytest

from shared.access.identity import principal_from_headers
from shared.domain.access import LOCAL_DEVELOPER
from shared.errors import Unauthenticated


def encode(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


PRINCIPAL = {
    "auth_typ": "aad",
    "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    "claims": [
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": "0000-oid"},
        {"typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "val": "Ada Lovelace"},
        {"typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "val": "Operator"},
    ],
}


def test_easy_auth_principal_is_read_from_the_encoded_header():
    principal = principal_from_headers({"X-MS-CLIENT-PRINCIPAL": encode(PRINCIPAL)}, development_mode=False)
    assert principal.id == "0000-oid"
    assert principal.name == "Ada Lovelace"
    assert principal.identity_provider == "aad"
    assert principal.roles == frozenset({"Operator"})


def test_the_id_header_wins_and_headers_are_case_insensitive():
    principal = principal_from_headers(
        {
            "x-ms-client-principal": encode(PRINCIPAL),
            "X-Ms-Client-Principal-Id": "explicit",
            "x-ms-client-principal-name": "N",
        },
        development_mode=False,
    )
    assert (principal.id, principal.name) == ("explicit", "N")


def test_id_header_alone_is_enough():
    principal = principal_from_headers({"X-MS-CLIENT-PRINCIPAL-ID": "abc"}, development_mode=False)
    assert principal.id == "abc"
    assert principal.name == "abc"


def test_no_headers_is_the_local_developer_only_in_development_mode():
    assert principal_from_headers({}, development_mode=True) == LOCAL_DEVELOPER
    with pytest.raises(Unauthenticated) as caught:
        principal_from_headers({}, development_mode=False)
    assert caught.value.code == "no_principal"


@pytest.mark.parametrize(
    "header",
    [
        "%%%not base64%%%",
        base64.b64encode(b"not json").decode(),
        encode(["a", "list"]),
        encode({"claims": "not a list"}),
        encode({"claims": [{"typ": 1, "val": "x"}]}),
        encode({"claims": []}),
        "ü",
    ],
)
def test_malformed_principal_headers_are_unauthenticated_not_a_crash(header):
    with pytest.raises(Unauthenticated):
        principal_from_headers({"X-MS-CLIENT-PRINCIPAL": header}, development_mode=True)
