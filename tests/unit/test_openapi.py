"""The API description is generated from the code and must name exactly the registered routes."""

import re

from functions.openapi import build_openapi
from tests.support.functions import _FUNCTIONS, call


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


def test_the_spec_names_every_registered_route_and_no_other():
    document = build_openapi()
    described = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert described == registered_http_routes()


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


def test_the_spec_is_served(monkeypatch):
    status, _headers, document = call("openapi_document", "GET", "openapi.json")
    assert status == 200
    assert document["paths"]["/api/environments/{env}/backups"]["post"]["responses"]["202"]


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
