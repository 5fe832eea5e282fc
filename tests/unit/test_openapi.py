"""The API description is generated from the app's registered functions and must name exactly the registered
routes; each query parameter is declared once, and the handler accepts exactly what the description says."""

import base64
import re

import azure.functions as func
import pytest

from functions.http import PUBLIC, ApiBlueprint, ApiFunctionApp, ApiRequest, Reply, RouteSpec, page_size
from functions.openapi import build_openapi
from shared.bootstrap import install_services
from shared.domain.access import ANONYMOUS
from tests.support.functions import _FUNCTIONS, call
from tests.support.memory import memory_services

ENVIRONMENT = {
    "namespace": "demo",
    "appName": "demo-app",
    "displayName": "Production",
    "state": "Running",
    "database": {"host": "127.0.0.1", "database": "prod", "user": "postgres"},
    "files": {"container": "demo-files", "prefix": "prod/"},
}
ROUTE_VALUES = {"env": "demo-production", "ns": "demo", "webhookId": "ops"}


def registered_http_routes() -> set[tuple[str, str]]:
    routes = set()
    for function in _FUNCTIONS.values():
        if not function.is_http_function():
            continue
        trigger = function.get_trigger().get_dict_repr()
        path = "/api/" + re.sub(r"{\*?([^}:?=]+)[^}]*}", r"{\1}", trigger["route"])
        for method in trigger["methods"]:
            routes.add((path, str(method.value if hasattr(method, "value") else method).lower()))
    return routes


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, operation) for path, item in document["paths"].items() for method, operation in item.items()]


def test_the_spec_names_every_registered_route_and_no_other():
    document = build_openapi()
    described = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert described == registered_http_routes()


def test_the_spec_is_built_from_the_functions_it_is_given():
    health = _FUNCTIONS["health"]
    document = build_openapi([health, _FUNCTIONS["nightly_backups"]])  # a timer is no route
    assert set(document["paths"]) == {"/api/health"}
    assert document["paths"]["/api/health"]["get"]["operationId"] == "health"


def test_the_spec_is_openapi_3_1_with_resolvable_references():
    document = build_openapi()
    assert document["openapi"] == "3.1.0"
    schemas = document["components"]["schemas"]
    text = str(document)
    for name in re.findall(r"#/components/schemas/([^'\"]+)", text):
        assert name in schemas, name
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["operationId"]
            assert "Access:" in operation["description"], (path, method)
            names = set(re.findall(r"{([^}]+)}", path))
            assert {p["name"] for p in operation["parameters"] if p["in"] == "path"} == names


def test_the_spec_is_served():
    status, _headers, document = call("openapi_document", "GET", "openapi.json")
    assert status == 200
    assert document["paths"]["/api/environments/{env}/backups"]["post"]["responses"]["202"]


def test_the_page_sizes_are_documented_as_each_handler_caps_them():
    limits = {
        (path, method): parameter["schema"]
        for path, method, operation in operations(build_openapi())
        for parameter in operation["parameters"]
        if parameter["name"] == "limit"
    }
    assert limits == {
        ("/api/environments/{env}/backups", "get"): {
            "type": "integer", "minimum": 1, "maximum": 100, "default": 20, "description": "Page size.",
        },
        ("/api/environments/{env}/activity", "get"): {
            "type": "integer", "minimum": 1, "maximum": 200, "default": 50, "description": "Page size.",
        },
        ("/api/namespaces/{ns}/activity", "get"): {
            "type": "integer", "minimum": 1, "maximum": 200, "default": 50, "description": "Page size.",
        },
        ("/api/namespaces/{ns}/webhooks/{webhookId}/deliveries", "get"): {
            "type": "integer", "minimum": 1, "maximum": 200, "default": 50, "description": "Page size.",
        },
    }  # fmt: skip


@pytest.fixture
def registered():
    services = memory_services(development_mode=True)
    install_services(services)
    status, _, _ = call(
        "put_environment", "PUT", "environments/demo-production", route={"env": "demo-production"}, body=ENVIRONMENT
    )
    assert status == 201
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    webhook = {"url": "https://hooks.example.com/appbackups", "events": ["appbackups.backup.failed"], "secret": secret}
    status, _, document = call("put_webhook", "PUT", "x", route={"ns": "demo", "webhookId": "ops"}, body=webhook)
    assert status == 201, document
    yield services
    install_services(None)


def test_every_integer_query_parameter_is_accepted_exactly_within_its_documented_bounds(registered):
    checked = []
    for path, method, operation in operations(build_openapi()):
        for parameter in operation["parameters"]:
            schema = parameter["schema"]
            if parameter["in"] != "query" or schema["type"] != "integer":
                continue
            route = {name: ROUTE_VALUES[name] for name in re.findall(r"{([^}]+)}", path)}
            for value, accepted in (
                (schema["minimum"], True),
                (schema["maximum"], True),
                (schema["minimum"] - 1, False),
                (schema["maximum"] + 1, False),
            ):
                status, _, document = call(
                    operation["operationId"], method.upper(), path, route=route, params={parameter["name"]: str(value)}
                )
                if accepted:
                    assert status == 200, (path, parameter["name"], value, document)
                else:
                    assert (status, document["code"]) == (400, "invalid_query"), (path, parameter["name"], value)
            checked.append(path)
    assert len(checked) == 4, checked


def test_every_choice_query_parameter_accepts_its_documented_values_and_no_other(registered):
    described = [
        (path, method, operation, parameter)
        for path, method, operation in operations(build_openapi())
        for parameter in operation["parameters"]
        if parameter["in"] == "query" and "enum" in parameter["schema"]
    ]
    assert {parameter["name"] for *_, parameter in described} == {"dataType", "deregistered"}
    for path, method, operation, parameter in described:
        route = {**ROUTE_VALUES, "id": "no-such-backup"}
        route = {name: route[name] for name in re.findall(r"{([^}]+)}", path)}
        for value in parameter["schema"]["enum"]:  # accepted: the download routes go on to an unknown backup
            status, _, answer = call(
                operation["operationId"], method.upper(), path, route=route, params={parameter["name"]: value}
            )
            assert (status, answer.get("code")) in ((200, None), (404, "backup_not_found")), (path, value, answer)
        status, _, answer = call(
            operation["operationId"], method.upper(), path, route=route, params={parameter["name"]: "other"}
        )
        assert (status, answer["code"]) == (400, "invalid_query"), (path, parameter["name"])


def test_a_handler_cannot_read_a_query_parameter_its_route_does_not_declare():
    request = func.HttpRequest("GET", "http://localhost/api/x", params={"limit": "5"}, body=b"")
    limit = page_size(default=20, maximum=100)
    assert ApiRequest(request, ANONYMOUS, "x", (limit,)).query_int(limit) == 5
    with pytest.raises(LookupError, match="'limit', undeclared"):
        ApiRequest(request, ANONYMOUS, "x", ()).query_int(limit)


def test_an_http_function_without_a_route_spec_is_refused():
    app = ApiFunctionApp()
    blueprint = ApiBlueprint()

    @blueprint.api("described", "GET", RouteSpec("Described", PUBLIC))
    def described(request: ApiRequest) -> Reply:
        return Reply(200)

    @blueprint.route(route="plain", methods=["GET"])
    def plain(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("")

    app.register_functions(blueprint)
    with pytest.raises(LookupError, match="HTTP function plain has no RouteSpec"):
        build_openapi(app.get_functions())


def test_the_app_is_indexed_once_and_read_again_by_the_description():
    """FunctionApp.get_functions() refuses a second call; the host has made the first one."""
    plain = func.FunctionApp()
    once = ApiFunctionApp()
    for app in (plain, once):

        @app.route(route="ping", methods=["GET"])
        def ping(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("")

    plain.get_functions()
    with pytest.raises(ValueError, match="unique"):
        plain.get_functions()
    first = once.get_functions()
    assert once.get_functions() == first
    assert [function.get_function_name() for function in first] == ["ping"]


def test_the_spec_describes_every_event_a_webhook_receives():
    from shared.domain.events import EventType

    document = build_openapi()
    assert set(document["webhooks"]) == {event.value for event in EventType}
    schemas = document["components"]["schemas"]
    for event_type, described in document["webhooks"].items():
        body = described["post"]["requestBody"]["content"]["application/cloudevents+json"]["schema"]
        assert body["properties"]["type"] == {"const": event_type}
        data = body["properties"]["data"]["$ref"].removeprefix("#/components/schemas/")
        assert data in schemas
        assert {p["name"] for p in described["post"]["parameters"]} == {
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        }
    finished = schemas["JobEventData"]["properties"]
    assert {"backupId", "status", "reason", "dumpSize", "durationSeconds"} <= set(finished)
    assert not any("url" in name.lower() or "secret" in name.lower() for name in finished)
