"""The CLI cannot drift from the API: every request it makes (cli/api/endpoints.py: method, path, query, body)
and every field it reads (cli/api/shapes.py) is held to the OpenAPI document the app serves at
/api/openapi.json; and the CLI reads no field it has not declared (cli/documents.py)."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, NotRequired, TypedDict, Union, get_args, get_origin, is_typeddict

import pytest

from cli.api import shapes
from cli.api.endpoints import ENDPOINTS, Endpoint
from cli.documents import Document, UndeclaredField
from tests.support.functions import call

JSON_TYPES: dict[Any, set[str]] = {
    str: {"string"},
    int: {"integer"},
    float: {"number", "integer"},
    bool: {"boolean"},
}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    status, _, document = call("openapi_document", "GET", "openapi.json")
    assert status == 200
    return document


class Contract:
    """Problems of one endpoint against the document: each a line naming the endpoint and the field."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.problems: list[str] = []

    def resolve(self, schema: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The schema a reference names, and its name in components/schemas."""
        name = None
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.document["components"]["schemas"][name]
        return schema, name

    def alternatives(self, schema: dict[str, Any]) -> tuple[list[tuple[dict[str, Any], str | None]], bool]:
        """The schema's non-null forms (each with its name), and whether it may be null."""
        schema, name = self.resolve(schema)
        forms = [self.resolve(each) for each in schema["anyOf"]] if "anyOf" in schema else [(schema, name)]
        nullable = any(form.get("type") == "null" for form, _ in forms)
        return [(form, name) for form, name in forms if form.get("type") != "null"], nullable

    def check(self, where: str, hint: Any, schema: dict[str, Any], *, sending: bool) -> None:
        forms, nullable = self.alternatives(schema)
        allows_none = get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)
        if allows_none:
            inner = [arg for arg in get_args(hint) if arg is not type(None)]
            hint = inner[0] if len(inner) == 1 else Union[tuple(inner)]  # noqa: UP007
        if nullable and not allows_none and not sending:
            self.problems.append(f"{where}: the API may send null; the CLI does not expect it")
        if allows_none and not nullable and sending:
            self.problems.append(f"{where}: the CLI may send null; the API does not take it")
        if len(forms) != 1:
            if forms and hint is not Any:
                self.problems.append(f"{where}: the API sends one of several forms; the CLI expects one")
            return
        ((form, name),) = forms
        if is_typeddict(hint):
            if name != hint.__name__:
                self.problems.append(f"{where}: the CLI's {hint.__name__} is the API's {name}")
            self.check_object(where, hint, form, sending=sending)
        elif get_origin(hint) is list:
            if form.get("type") != "array":
                self.problems.append(f"{where}: the API has no list here ({form.get('type')})")
            else:
                self.check(f"{where}[]", get_args(hint)[0], form["items"], sending=sending)
        elif get_origin(hint) is dict:
            values = form.get("additionalProperties")
            if form.get("type") != "object" or not isinstance(values, dict):
                self.problems.append(f"{where}: the API has no map here")
            else:
                self.check(f"{where}{{}}", get_args(hint)[1], values, sending=sending)
        elif get_origin(hint) is Literal:
            unknown = set(get_args(hint)) - set(form.get("enum", get_args(hint)))
            if unknown:
                self.problems.append(f"{where}: the API has no value {sorted(unknown)} (it has {form['enum']})")
        elif hint in JSON_TYPES:
            if form.get("type") not in JSON_TYPES[hint]:
                self.problems.append(f"{where}: the CLI takes {hint.__name__}, the API has {form.get('type')}")
        else:
            self.problems.append(f"{where}: the CLI's type {hint!r} is not one this check knows")

    def check_object(self, where: str, shape: type, form: dict[str, Any], *, sending: bool) -> None:
        properties, required = form.get("properties", {}), set(form.get("required", []))
        hints = typing.get_type_hints(shape)
        for name, hint in hints.items():
            if name not in properties:
                self.problems.append(f"{where}.{name}: the API has no such field")
                continue
            if not sending and name in shape.__required_keys__ and name not in required:  # type: ignore[attr-defined]
                self.problems.append(f"{where}.{name}: the API may leave it out; declare it NotRequired")
            self.check(f"{where}.{name}", hint, properties[name], sending=sending)
        if sending:
            for name in sorted(required - {key for key in hints if key in shape.__required_keys__}):  # type: ignore[attr-defined]
                self.problems.append(f"{where}.{name}: the API requires it; the CLI does not always send it")

    def endpoint(self, endpoint: Endpoint) -> list[str]:
        operation = self.document["paths"].get(f"/api{endpoint.path}", {}).get(endpoint.method.lower())
        if operation is None:
            return [f"{endpoint}: the API has no such route"]
        queries = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        for name in sorted(set(endpoint.query) - queries):
            self.problems.append(f"{endpoint} ?{name}: the API takes no such query parameter")
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if endpoint.body is not None and body is None:
            self.problems.append(f"{endpoint}: the API takes no body")
        elif endpoint.body is None and body is not None and operation["requestBody"].get("required"):
            self.problems.append(f"{endpoint}: the API requires a body")
        elif endpoint.body is not None and body is not None:
            self.check(f"{endpoint} body", endpoint.body, body, sending=True)
        successes = {int(status) for status in operation["responses"] if status.startswith("2")}
        if successes != set(endpoint.answers):
            self.problems.append(
                f"{endpoint}: the API answers {sorted(successes)}, the CLI knows {sorted(endpoint.answers)}"
            )
        for status, shape in endpoint.answers.items():
            content = operation["responses"].get(str(status), {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if shape is None:
                if schema is not None:
                    self.problems.append(f"{endpoint} {status}: the API sends a body the CLI does not expect")
            elif schema is None:
                self.problems.append(f"{endpoint} {status}: the API sends no JSON body")
            else:
                self.check(f"{endpoint} {status}", shape, schema, sending=False)
        return self.problems


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_every_request_and_every_field_read_is_in_the_served_openapi(openapi, endpoint):
    assert Contract(openapi).endpoint(endpoint) == []


def test_a_problem_document_is_read_as_the_api_describes_it(openapi):
    contract = Contract(openapi)
    contract.check("problem", shapes.Problem, {"$ref": "#/components/schemas/Problem"}, sending=False)
    assert contract.problems == []


class BackupView(TypedDict):
    id: str
    sizeInBytes: int  # not the API's name
    comment: str | None  # the API never sends null here: fine
    finishedOn: str  # the API may send null
    tier: typing.Literal["manual", "hourly"]  # no such tier
    keepUntil: NotRequired[str | None]


class RestoreBody(TypedDict):
    target: str  # the API calls it targetEnvironment, and requires it


def test_the_check_fails_on_a_path_a_field_or_a_value_the_api_lacks(openapi):
    """The check can fail: a route, a query parameter, a body field and response fields the API does not have."""
    assert Contract(openapi).endpoint(Endpoint("GET", "/environments/{env}/snapshots", {200: None})) == [
        "GET /api/environments/{env}/snapshots: the API has no such route"
    ]
    wrong = Endpoint(
        "POST", "/environments/{env}/backups/{id}/restore", {202: BackupView, 200: None}, body=RestoreBody, query=("x",)
    )
    assert Contract(openapi).endpoint(wrong) == [
        f"{wrong} ?x: the API takes no such query parameter",
        f"{wrong} body.target: the API has no such field",
        f"{wrong} body.targetEnvironment: the API requires it; the CLI does not always send it",
        f"{wrong} 202: the CLI's BackupView is the API's OperationView",
        f"{wrong} 202.sizeInBytes: the API has no such field",
        f"{wrong} 202.comment: the API has no such field",
        f"{wrong} 202.finishedOn: the API may send null; the CLI does not expect it",
        f"{wrong} 202.tier: the API has no such field",
        f"{wrong} 202.keepUntil: the API has no such field",
        f"{wrong} 200: the API sends a body the CLI does not expect",
    ]
    backup = Endpoint("GET", "/environments/{env}/backups/{id}", {200: BackupView})
    assert Contract(openapi).endpoint(backup) == [
        f"{backup} 200.sizeInBytes: the API has no such field",
        f"{backup} 200.finishedOn: the API may send null; the CLI does not expect it",
        f"{backup} 200.tier: the API has no value ['hourly'] (it has "
        "['manual', 'nightly', 'weekly', 'monthly', 'uploaded', 'pre-restore', 'point-in-time'])",
    ]


def test_reading_a_field_not_declared_is_refused():
    backup = Document({"id": "b1", "status": "Finished", "verification": None, "secret": "x"}, shapes.BackupView)
    assert backup["id"] == "b1"
    assert backup.get("verification") is None
    with pytest.raises(UndeclaredField, match="BackupView does not declare 'secret'"):
        backup.get("secret")
    with pytest.raises(UndeclaredField, match="may be absent"):
        backup["verification"]


def test_nested_documents_are_held_to_their_shapes():
    page = Document(
        {"items": [{"id": "b1", "createdBy": {"id": "p", "name": "Ann", "email": "a@x"}}]}, shapes.Page_BackupView_
    )
    (item,) = page["items"]
    assert item["createdBy"]["name"] == "Ann"
    with pytest.raises(UndeclaredField, match="PrincipalView does not declare 'email'"):
        item["createdBy"]["email"]


def test_the_client_calls_only_declared_endpoints():
    from cli.api import Api
    from cli.client import Client
    from cli.config import ClientConfig

    with pytest.raises(TypeError, match="not declared"):
        Api(Client(ClientConfig())).call(Endpoint("GET", "/health", {200: None}))
