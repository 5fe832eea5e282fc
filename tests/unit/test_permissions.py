"""The permission matrix: every route against every kind of caller, on in-memory storage, as Azure runs it
(Easy Auth on, no development mode)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from shared.bootstrap import install_services
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import Permission, Principal
from shared.domain.backups import Tier
from shared.domain.downloads import DataType
from tests.support.functions import _FUNCTIONS, call
from tests.support.memory import memory_services

GLOBAL = "global-admin-oid"
CALLERS = ("none", "nobody", "other-member", "manager", "manager-stopper", "namespace-admin", "global-admin")
PERMISSIONS = {
    "other-member": ("other", {Permission.MANAGE_BACKUPS, Permission.STOP_APPS}),
    "manager": ("ns", {Permission.MANAGE_BACKUPS}),
    "manager-stopper": ("ns", {Permission.MANAGE_BACKUPS, Permission.STOP_APPS}),
    "namespace-admin": ("ns", {Permission.NAMESPACE_ADMIN}),
}
HIDDEN = {"environment_not_found", "namespace_not_found", "restore_not_found", "drill_not_found"}
HOOK = {"url": "https://hooks.example.com/appbackups", "events": ["*"], "secret": "whsec_" + "A" * 32}


def headers_of(caller: str) -> dict[str, str]:
    if caller == "none":
        return {}
    principal_id = GLOBAL if caller == "global-admin" else f"{caller}-oid"
    return {"X-MS-CLIENT-PRINCIPAL-ID": principal_id, "X-MS-CLIENT-PRINCIPAL-NAME": caller}


def registration(namespace: str, state: str = "Stopped") -> dict:
    return {
        "namespace": namespace,
        "appName": "app",
        "displayName": "An environment",
        "state": state,
        "database": {"host": "h", "database": "d", "user": "u"},
        "files": {"container": "files"},
    }


@dataclass
class World:
    services: object
    backup_id: str
    restore_id: str
    drill_id: str


@pytest.fixture
def world() -> World:
    services = memory_services(easy_auth_enabled=True, global_admins=frozenset({GLOBAL}))
    system = Principal(GLOBAL, "setup")
    services.environments.put(
        "prod", EnvironmentBody.model_validate(registration("ns", "Running")).to_registration(), system
    )
    services.environments.put("acc", EnvironmentBody.model_validate(registration("ns")).to_registration(), system)
    services.environments.put(
        "elsewhere", EnvironmentBody.model_validate(registration("other")).to_registration(), system
    )
    for caller, (namespace, permissions) in PERMISSIONS.items():
        services.access.grant(namespace, f"{caller}-oid", frozenset(permissions), caller, system)
    backup = services.backups.record("prod", system)
    finished = services.backup_catalog.save(backup.finished(backup.created_on, dump_size=1, dump_sha256="0" * 64))
    done = services.backups.record("prod", system, tier=Tier.MANUAL)
    done = services.backup_catalog.save(done.finished(done.created_on, dump_size=1, dump_sha256="0" * 64))
    services.downloads.request("prod", done.id, DataType.DATABASE_ONLY, system)
    restore = services.restores.request("prod", finished.id, "acc", system)
    drill = services.drills.request("prod", done.id, system)
    services.environments.stop("prod", system)
    services.webhooks.put(
        "ns", "hook", url=HOOK["url"], events=("*",), secret=HOOK["secret"], description="", caller=system
    )
    install_services(services)
    yield World(services, done.id, restore.id, drill.id)
    install_services(None)


@dataclass(frozen=True)
class Case:
    function: str
    method: str
    route: dict[str, str]
    body: Callable[[World], object] | None
    allowed: frozenset[str]


DRY_RUN = {"targetEnvironment": "prod", "dryRun": True}
AN_INSTANT = "2026-10-22T01:00:00Z"
NS_READERS = frozenset({"manager", "manager-stopper", "namespace-admin", "global-admin"})
STOPPERS = frozenset({"manager-stopper", "namespace-admin", "global-admin"})
ADMINS = frozenset({"namespace-admin", "global-admin"})
SIGNED_IN = frozenset(CALLERS) - {"none"}

CASES = [
    Case("list_environments", "GET", {}, None, SIGNED_IN),
    Case("get_night", "GET", {"night": "2026-10-22"}, None, SIGNED_IN),
    Case("get_me", "GET", {}, None, SIGNED_IN),
    Case("get_environment", "GET", {"env": "prod"}, None, NS_READERS),
    Case("list_activity", "GET", {"env": "prod"}, None, NS_READERS),
    Case("put_environment", "PUT", {"env": "prod"}, lambda w: registration("ns", "Running"), ADMINS),
    Case("deregister_environment", "DELETE", {"env": "acc"}, None, ADMINS),
    Case("stop_environment", "POST", {"env": "prod"}, None, STOPPERS),
    Case("start_environment", "POST", {"env": "prod"}, None, STOPPERS),
    Case("list_backups", "GET", {"env": "prod"}, None, NS_READERS),
    Case("create_backup", "POST", {"env": "prod"}, lambda w: {"comment": "x"}, NS_READERS),
    Case("get_backup", "GET", {"env": "prod", "id": "@backup"}, None, NS_READERS),
    Case("edit_backup", "PATCH", {"env": "prod", "id": "@backup"}, lambda w: {"comment": "y"}, NS_READERS),
    Case("delete_backup", "DELETE", {"env": "prod", "id": "@backup"}, None, NS_READERS),
    Case("restore_backup", "POST", {"env": "prod", "id": "@backup"}, lambda w: {"targetEnvironment": "prod"}, STOPPERS),
    Case("get_restore", "GET", {"restoreId": "@restore"}, None, NS_READERS),
    Case("cancel_restore", "POST", {"restoreId": "@restore"}, None, STOPPERS),
    Case("verify_backup", "POST", {"env": "prod", "id": "@backup"}, None, NS_READERS),
    Case("get_drill", "GET", {"drillId": "@drill"}, None, NS_READERS),
    Case("cancel_drill", "POST", {"drillId": "@drill"}, None, NS_READERS),
    Case("restore_backup", "POST", {"env": "prod", "id": "@backup"}, lambda w: DRY_RUN, STOPPERS),
    Case("cancel_backup", "POST", {"env": "prod", "id": "@backup"}, None, NS_READERS),
    Case("get_recovery_window", "GET", {"env": "prod"}, None, NS_READERS),
    Case("restore_to_time", "POST", {"env": "prod"}, lambda w: {**DRY_RUN, "pointInTime": AN_INSTANT}, STOPPERS),
    Case(
        "restore_to_time",
        "POST",
        {"env": "prod"},
        lambda w: {"targetEnvironment": "acc", "pointInTime": AN_INSTANT},
        STOPPERS,
    ),
    Case("request_download", "POST", {"env": "prod", "id": "@backup"}, lambda w: {}, NS_READERS),
    Case("get_download", "GET", {"env": "prod", "id": "@backup"}, None, NS_READERS),
    Case("cancel_download", "POST", {"env": "prod", "id": "@backup"}, None, NS_READERS),
    Case("start_upload", "POST", {"env": "prod"}, None, NS_READERS),
    Case("complete_upload", "POST", {"env": "prod", "uploadId": "nope"}, None, NS_READERS),
    Case("list_members", "GET", {"ns": "ns"}, None, ADMINS),
    Case("put_member", "PUT", {"ns": "ns", "principalId": "new-oid"}, lambda w: {"permissions": ["StopApps"]}, ADMINS),
    Case("delete_member", "DELETE", {"ns": "ns", "principalId": "manager-oid"}, None, ADMINS),
    Case("namespace_activity", "GET", {"ns": "ns"}, None, ADMINS),
    Case("list_webhooks", "GET", {"ns": "ns"}, None, ADMINS),
    Case("get_webhook", "GET", {"ns": "ns", "webhookId": "hook"}, None, ADMINS),
    Case("put_webhook", "PUT", {"ns": "ns", "webhookId": "new-hook"}, lambda w: HOOK, ADMINS),
    Case("delete_webhook", "DELETE", {"ns": "ns", "webhookId": "hook"}, None, ADMINS),
    Case("list_deliveries", "GET", {"ns": "ns", "webhookId": "hook"}, None, ADMINS),
    Case("openapi_document", "GET", {}, None, frozenset(CALLERS)),
    Case("portal_page", "GET", {}, None, frozenset(CALLERS)),
    Case("portal_asset", "GET", {"asset": "index.html"}, None, frozenset(CALLERS)),
    Case("docs_page", "GET", {}, None, frozenset(CALLERS)),
    Case("docs_asset", "GET", {"asset": "docs.js"}, None, frozenset(CALLERS)),
]


def test_every_registered_route_is_in_the_matrix():
    http = {name for name, function in _FUNCTIONS.items() if function.is_http_function()}
    assert http - {case.function for case in CASES} == {"health"}  # health is public and needs live storage


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.function)
def test_the_permission_matrix(world, case, caller):
    named = {"@backup": world.backup_id, "@restore": world.restore_id, "@drill": world.drill_id}
    route = {key: named.get(value, value) for key, value in case.route.items()}
    status, _, document = call(
        case.function,
        case.method,
        "x",
        route=route,
        body=case.body(world) if case.body else None,
        headers=headers_of(caller),
    )
    code = (document or {}).get("code") if isinstance(document, dict) else None
    if caller in case.allowed:
        assert status not in (401, 403), (status, document)
        assert code not in HIDDEN, (status, document)
    elif caller == "none":
        assert (status, code) == (401, "no_principal")
    elif caller in ("nobody", "other-member") or case.function in ("get_me", "list_environments"):
        assert status == 404, (status, document)
        assert code in HIDDEN, (status, document)
    else:
        assert (status, code) == (403, "permission_missing"), (status, document)


def test_environments_are_listed_only_where_the_caller_has_a_permission(world):
    def listed(caller):
        return {item["id"] for item in call("list_environments", "GET", "x", headers=headers_of(caller))[2]["items"]}

    assert listed("other-member") == {"elsewhere"}
    assert listed("manager") == {"prod", "acc"}
    assert listed("nobody") == set()
    assert listed("global-admin") == {"prod", "acc", "elsewhere"}


def test_registering_needs_namespace_admin_of_the_namespace(world):
    def register(caller, environment, namespace):
        return call(
            "put_environment",
            "PUT",
            "x",
            route={"env": environment},
            body=registration(namespace),
            headers=headers_of(caller),
        )

    assert register("namespace-admin", "new-one", "ns")[0] == 201
    assert register("namespace-admin", "new-two", "other")[0] == 404
    assert register("manager", "new-three", "ns")[0] == 403
    assert register("global-admin", "new-four", "brand-new")[0] == 201


def test_a_restore_into_another_namespace_does_not_leak_the_target(world):
    body = {"targetEnvironment": "elsewhere"}
    route = {"env": "prod", "id": world.backup_id}
    status, _, document = call(
        "restore_backup", "POST", "x", route=route, body=body, headers=headers_of("manager-stopper")
    )
    assert (status, document["code"]) == (404, "environment_not_found")
    status, _, document = call(
        "restore_backup", "POST", "x", route=route, body=body, headers=headers_of("global-admin")
    )
    assert (status, document["code"]) == (422, "cross_namespace")
