"""The webhook routes, called as the Functions host calls them, on in-memory storage as Azure runs them
(Easy Auth on, production rules for URLs): register, replace, read, list, remove, the deliveries, and
what is refused — a URL that is not public HTTPS, a new webhook without a secret, unknown event types.
The secret is never returned."""

from __future__ import annotations

import pytest

from shared.bootstrap import install_services
from shared.domain.access import Permission, Principal
from tests.support.functions import call
from tests.support.memory import memory_services

ADMIN = {"X-MS-CLIENT-PRINCIPAL-ID": "admin-oid", "X-MS-CLIENT-PRINCIPAL-NAME": "Admin"}
SECRET = "whsec_" + "Q" * 32
HOOK = {"url": "https://hooks.example.com/appbackups", "events": ["appbackups.backup.*"], "secret": SECRET}


@pytest.fixture(autouse=True)
def services():
    services = memory_services(easy_auth_enabled=True)
    services.access.grant("ns", "admin-oid", frozenset({Permission.NAMESPACE_ADMIN}), "Admin", Principal("x", "x"))
    install_services(services)
    yield services
    install_services(None)


def put(webhook_id: str, body: dict, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    route = {"ns": "ns", "webhookId": webhook_id}
    return call("put_webhook", "PUT", "x", route=route, body=body, headers=ADMIN if headers is None else headers)


def get(function: str, webhook_id: str | None = None):  # type: ignore[no-untyped-def]
    route = {"ns": "ns", **({"webhookId": webhook_id} if webhook_id else {})}
    return call(function, "GET", "x", route=route, headers=ADMIN)


def test_register_read_replace_list_and_remove_without_ever_showing_the_secret(services) -> None:
    status, _, created = put("ops", HOOK)
    assert status == 201, created
    assert created["secretSet"] is True
    assert SECRET not in str(created)
    assert created["events"] == ["appbackups.backup.*"]
    assert created["createdBy"] == "Admin"
    assert created["lastDelivery"] is None
    status, _, replaced = put("ops", {"url": "https://hooks.example.com/v2", "events": ["*"], "description": "ops"})
    assert status == 200, replaced
    assert (replaced["url"], replaced["secretSet"], replaced["description"]) == (
        "https://hooks.example.com/v2",
        True,
        "ops",
    )
    kept = services.webhooks.get("ns", "ops")  # kept: the replacement named none
    assert [services.secrets.read(kept.secret_name, key.version) for key in kept.signing_keys] == [SECRET]
    status, _, one = get("get_webhook", "ops")
    assert status == 200
    assert SECRET not in str(one)
    assert "secret" not in one
    status, _, listed = get("list_webhooks")
    assert [item["id"] for item in listed["items"]] == ["ops"]
    status, _, deliveries = get("list_deliveries", "ops")
    assert (status, deliveries["items"]) == (200, [])
    assert call("delete_webhook", "DELETE", "x", route={"ns": "ns", "webhookId": "ops"}, headers=ADMIN)[0] == 204
    status, _, missing = get("get_webhook", "ops")
    assert (status, missing["code"]) == (404, "webhook_not_found")
    assert services.secrets.valid_versions(kept.secret_name) == []  # removed: its secret disabled


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({**HOOK, "url": "http://hooks.example.com/in"}, "webhook_url_refused"),
        ({**HOOK, "url": "https://localhost:9000/in"}, "webhook_url_refused"),
        ({**HOOK, "url": "https://10.0.0.5/in"}, "webhook_url_refused"),
        ({**HOOK, "url": "https://metadata.example.com/in"}, "webhook_url_refused"),
        ({**HOOK, "url": "https://nowhere.example.com/in"}, "webhook_url_refused"),
        ({**HOOK, "secret": None}, "webhook_secret_required"),
        ({**HOOK, "secret": "hunter2"}, "validation_failed"),
        ({**HOOK, "secret": "whsec_c2hvcnQ="}, "validation_failed"),
        ({**HOOK, "events": ["appbackups.backup.exploded"]}, "validation_failed"),
        ({**HOOK, "events": []}, "validation_failed"),
    ],
)
def test_what_is_refused(body: dict, code: str) -> None:
    status, _, document = put("ops", body)
    assert (status, document["code"]) == (400, code), document


def test_a_webhook_id_is_a_name() -> None:
    status, _, document = put("Not_A_Name", HOOK)
    assert (status, document["code"]) == (400, "invalid_webhook_id")


def test_development_mode_allows_a_local_receiver() -> None:
    services = memory_services(development_mode=True)
    install_services(services)
    status, _, document = put("local", {**HOOK, "url": "http://127.0.0.1:9000/in"}, headers={})
    assert status == 201, document
    status, _, document = put("lan", {**HOOK, "url": "http://192.168.1.20:9000/in"}, headers={})
    assert (status, document["code"]) == (400, "webhook_url_refused")
