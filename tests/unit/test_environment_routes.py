"""The environment routes, called as the Functions host calls them, on in-memory storage."""

import pytest

from shared.bootstrap import install_services
from tests.support.functions import call
from tests.support.memory import memory_services

PRODUCTION = {
    "namespace": "demo",
    "appName": "demo-app",
    "displayName": "Production",
    "state": "Running",
    "database": {"host": "127.0.0.1", "database": "prod", "user": "postgres"},
    "files": {"container": "demo-files", "prefix": "prod/"},
}


@pytest.fixture(autouse=True)
def services():
    services = memory_services(development_mode=True)
    install_services(services)
    yield services
    install_services(None)


def put(env: str, body, **kwargs):
    return call("put_environment", "PUT", f"environments/{env}", route={"env": env}, body=body, **kwargs)


def test_register_read_and_list():
    status, headers, document = put("demo-production", PRODUCTION)
    assert status == 201
    assert headers["Location"] == "/api/environments/demo-production"
    assert document["state"] == "Running"
    assert document["database"]["passwordSetting"] is None
    status, headers, document = call(
        "get_environment", "GET", "environments/demo-production", route={"env": "demo-production"}
    )
    assert status == 200
    assert headers["ETag"] == document["etag"]
    status, _, document = call("list_environments", "GET", "environments")
    assert [item["id"] for item in document["items"]] == ["demo-production"]


def test_update_answers_200_and_if_match_mismatch_412():
    _, headers, _ = put("demo-production", PRODUCTION)
    status, _, _ = put("demo-production", {**PRODUCTION, "displayName": "Prod"}, headers={"If-Match": headers["ETag"]})
    assert status == 200
    status, headers, document = put(
        "demo-production", {**PRODUCTION, "displayName": "Stale"}, headers={"If-Match": headers["ETag"]}
    )
    assert status == 412
    assert headers["Content-Type"].startswith("application/problem+json")
    assert document["code"] == "etag_mismatch"


def test_bad_json_is_400():
    status, headers, document = put("demo-production", None, raw_body=b"{not json")
    assert status == 400
    assert headers["Content-Type"].startswith("application/problem+json")
    assert document["code"] == "invalid_json"
    assert document["status"] == 400


def test_validation_names_the_field():
    bad = {**PRODUCTION, "database": {**PRODUCTION["database"], "port": 70000}}
    status, _, document = put("demo-production", bad)
    assert status == 400
    assert document["code"] == "validation_failed"
    assert [error["field"] for error in document["errors"]] == ["database.port"]
    assert "database.port" in document["detail"]


def test_unknown_fields_and_missing_fields_are_named():
    status, _, document = put("demo-production", {**PRODUCTION, "colour": "blue", "namespace": None})
    assert status == 400
    assert {error["field"] for error in document["errors"]} == {"colour", "namespace"}


def test_invalid_environment_id_is_400():
    status, _, document = put("Not_Valid", PRODUCTION)
    assert status == 400
    assert document["code"] == "invalid_environment_id"


def test_unknown_environment_is_404_problem():
    status, headers, document = call("get_environment", "GET", "environments/nope", route={"env": "nope"})
    assert status == 404
    assert headers["Content-Type"].startswith("application/problem+json")
    assert document["code"] == "environment_not_found"


def test_stop_twice_and_start_from_deploying_conflicts():
    put("demo-production", PRODUCTION)
    for _ in range(2):
        status, _, document = call(
            "stop_environment", "POST", "environments/demo-production/stop", route={"env": "demo-production"}
        )
        assert (status, document["state"]) == (200, "Stopped")
    put("demo-production", {**PRODUCTION, "state": "Deploying"})
    status, _, document = call(
        "start_environment", "POST", "environments/demo-production/start", route={"env": "demo-production"}
    )
    assert status == 409
    assert "Deploying" in document["detail"]


def test_activity_is_paged_and_rejects_bad_paging():
    put("demo-production", PRODUCTION)
    for name in ("stop_environment", "start_environment", "stop_environment"):
        call(name, "POST", "x", route={"env": "demo-production"})
    status, _, document = call(
        "list_activity",
        "GET",
        "environments/demo-production/activity",
        route={"env": "demo-production"},
        params={"limit": "2"},
    )
    assert status == 200
    assert [item["action"] for item in document["items"]] == ["stop", "start"]
    token = document["continuationToken"]
    _, _, document = call(
        "list_activity", "GET", "x", route={"env": "demo-production"}, params={"limit": "2", "continuationToken": token}
    )
    assert [item["action"] for item in document["items"]] == ["stop", "register"]
    assert document["continuationToken"] is None
    assert document["items"][0]["actorId"] == "local-developer"
    for params in ({"limit": "0"}, {"limit": "abc"}, {"continuationToken": "garbage!"}):
        status, _, document = call("list_activity", "GET", "x", route={"env": "demo-production"}, params=params)
        assert (status, document["code"]) == (400, "invalid_query")


def test_without_development_mode_a_caller_must_be_signed_in(services):
    install_services(memory_services(development_mode=False, easy_auth_enabled=True))
    status, _, document = call("list_environments", "GET", "environments")
    assert (status, document["code"]) == (401, "no_principal")
    status, _, document = call("list_environments", "GET", "environments", headers={"X-MS-CLIENT-PRINCIPAL": "@@@"})
    assert (status, document["code"]) == (401, "malformed_principal")


def test_without_easy_auth_and_development_mode_every_request_is_refused(services, caplog):
    install_services(memory_services(development_mode=False, easy_auth_enabled=False))
    forged = {"X-MS-CLIENT-PRINCIPAL-ID": "someone"}
    status, _, document = call("list_environments", "GET", "environments", headers=forged)
    assert (status, document["code"]) == (503, "authentication_not_configured")
    assert "App Service Authentication is off" in caplog.text


def test_development_mode_is_refused_in_azure(services):
    install_services(memory_services(development_mode=True, running_in_azure=True))
    status, _, document = call("list_environments", "GET", "environments")
    assert (status, document["code"]) == (503, "authentication_not_configured")


def test_an_unexpected_error_is_a_500_without_a_stack_trace(services, monkeypatch):
    def explode():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services.environments, "list", explode)
    status, headers, document = call("list_environments", "GET", "environments")
    assert status == 500
    assert headers["Content-Type"].startswith("application/problem+json")
    assert "secret internals" not in str(document)
    assert "Traceback" not in str(document)
