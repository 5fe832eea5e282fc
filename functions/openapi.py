"""Route: the OpenAPI 3.1 description of the API, generated from the app's registered functions
(``app.get_functions()``: each HTTP trigger's route and methods, and the RouteSpec its entrypoint carries)
and their pydantic models, so it cannot drift from the code; a test holds it against the app's functions."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from functions.http import PUBLIC, ApiBlueprint, ApiRequest, Reply, RouteSpec, Scope
from shared.contracts.common import ENVIRONMENT_ID_PATTERN, NAMESPACE_PATTERN, Problem
from shared.contracts.webhooks import EVENT_DATA, EVENT_SUMMARIES, event_envelope_schema
from shared.domain.events import EventType

bp = ApiBlueprint()

_PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "env": {"type": "string", "pattern": ENVIRONMENT_ID_PATTERN, "description": "Environment id."},
    "ns": {"type": "string", "pattern": NAMESPACE_PATTERN, "description": "Namespace."},
    "id": {"type": "string", "description": "Backup id, a UUID."},
    "restoreId": {"type": "string", "description": "Restore id, from the Location of POST …/restore."},
    "drillId": {"type": "string", "description": "Restore drill id, from the Location of POST …/verify."},
    "uploadId": {"type": "string", "description": "Upload id, from POST …/uploads."},
    "principalId": {"type": "string", "description": "Object id of a Microsoft Entra principal."},
    "webhookId": {"type": "string", "pattern": NAMESPACE_PATTERN, "description": "Webhook id, chosen at PUT."},
    "asset": {"type": "string", "description": "A file of the Backups page, e.g. app.js."},
    "night": {"type": "string", "format": "date", "description": "A night, as its date (YYYY-MM-DD, UTC)."},
}
_PARAMETER = r"{\*?([^}:?=]+)[^}]*}"  # {name}, {name:constraint}, {name?}, {*catchall}
_ERRORS = {
    400: "The request is not valid (bad JSON, a field that fails validation, a malformed id or query).",
    401: "No authenticated caller, or a malformed principal header.",
    403: "The caller lacks a permission this needs in the namespace.",
    404: "Not found — or in a namespace where the caller has no permission.",
    409: "The current state forbids it (an environment's state, a restore in progress, a concurrent change).",
    412: "If-Match names a version that is no longer current.",
    422: "Well-formed but not acceptable (e.g. a restore across namespaces).",
    503: "A dependency is unavailable (storage, the work queue), or authentication is not configured.",
}
_WITHOUT_REQUEST = {401, 403, 404, 409, 412, 422, 503}


@dataclass(frozen=True)
class _Route:
    """One method of one HTTP function, as the app registered it."""

    route: str
    method: str
    function_name: str
    spec: RouteSpec


def _routes(functions: Iterable[func.Function]) -> list[_Route]:
    routes = []
    for function in functions:
        if not function.is_http_function():
            continue
        name = function.get_function_name()
        spec = getattr(function.get_user_function(), "route_spec", None)
        if not isinstance(spec, RouteSpec):
            raise LookupError(f"HTTP function {name} has no RouteSpec: register it with ApiBlueprint.api")
        trigger = function.get_trigger().get_dict_repr()
        for method in trigger["methods"]:
            method_name = method.value if isinstance(method, enum.Enum) else str(method)
            routes.append(_Route(str(trigger["route"]), method_name.upper(), name, spec))
    return routes


def app_functions() -> list[func.Function]:
    """The functions of the app this blueprint is registered in, as the host indexed them."""
    from function_app import app  # function_app imports this module: the app is read at call time

    return app.get_functions()


def _models(routes: list[_Route]) -> list[tuple[type[BaseModel], str]]:
    models: list[tuple[type[BaseModel], str]] = [(Problem, "serialization")]
    models += [(model, "serialization") for model in EVENT_DATA.values()]
    for registered in routes:
        if registered.spec.request_model is not None:
            models.append((registered.spec.request_model, "validation"))
        if registered.spec.response_model is not None:
            models.append((registered.spec.response_model, "serialization"))
        models += [(model, "serialization") for _, model, _ in registered.spec.other_success]
    return list(dict.fromkeys(models))


def _parameters(route: str, spec: RouteSpec) -> list[dict[str, Any]]:
    names = re.findall(_PARAMETER, route)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _PATH_PARAMETERS.get(name, {"type": "string"})}
        for name in names
    ]
    parameters += [
        {"name": param.name, "in": "query", "required": False, "schema": param.schema()} for param in spec.query
    ]
    return parameters


def _required_body(model: type[BaseModel]) -> bool:
    return any(field.is_required() for field in model.model_fields.values())


def build_openapi(functions: Iterable[func.Function] | None = None) -> dict[str, Any]:
    """The document for ``functions`` (by default, the app's)."""
    routes = _routes(app_functions() if functions is None else functions)
    keys, definitions = models_json_schema(_models(routes), by_alias=True, ref_template="#/components/schemas/{model}")
    schemas = definitions.get("$defs", {})

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return keys[(model, mode)]  # type: ignore[index]

    problem = {"application/problem+json": {"schema": ref(Problem, "serialization")}}
    paths: dict[str, dict[str, Any]] = {}
    for registered in routes:
        spec = registered.spec
        path = "/api/" + re.sub(_PARAMETER, r"{\1}", registered.route)
        success: dict[str, Any] = {"description": spec.summary}
        if spec.response_model is not None:
            success["content"] = {"application/json": {"schema": ref(spec.response_model, "serialization")}}
        elif spec.media_types:
            success["content"] = {media: {"schema": {"type": "string"}} for media in spec.media_types}
        if spec.success_status in (201, 202):
            success["headers"] = {"Location": {"schema": {"type": "string"}, "description": "Where to follow it."}}
        responses: dict[str, Any] = {str(status): success for status in (spec.success_status, *spec.also_success)}
        for status, model, description in spec.other_success:
            content = {"application/json": {"schema": ref(model, "serialization")}}
            responses[str(status)] = {"description": description, "content": content}
        for status, description in _ERRORS.items():
            if spec.access.scope is Scope.PUBLIC and status in (401, 403):
                continue
            responses[str(status)] = {"description": description, "content": problem}
        if registered.function_name == "health":
            responses["503"] = {"description": "Storage is unreachable.", "content": success.get("content", {})}
        operation: dict[str, Any] = {
            "operationId": registered.function_name,
            "summary": spec.summary,
            "description": f"Access: {spec.access.describe()}",
            "tags": [spec.tag] if spec.tag else [],
            "parameters": _parameters(registered.route, spec),
            "responses": responses,
        }
        if spec.request_model is not None:
            operation["requestBody"] = {
                "required": _required_body(spec.request_model),
                "content": {"application/json": {"schema": ref(spec.request_model, "validation")}},
            }
        if spec.access.scope is not Scope.PUBLIC:
            operation["security"] = [{"functionKey": []}, {"functionKeyQuery": []}]
        else:
            operation["security"] = []
        paths.setdefault(path, {})[registered.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "webhooks": _events(ref),
        "info": {
            "title": "appbackups",
            "version": "1.0.0",
            "description": "Backup and restore for apps on Azure: PostgreSQL databases and their file documents. "
            "Callers are identified by App Service Authentication (Microsoft Entra ID); routes other than the "
            "public ones also take a function key. Errors are application/problem+json (RFC 9457) with a "
            "stable `code`.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
        },
    }


_SIGNATURE_HEADERS = [
    {"name": "webhook-id", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "The event's id: the same on every attempt, so a receiver can de-duplicate."},
    {"name": "webhook-timestamp", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "Seconds since the epoch when this attempt was signed."},
    {"name": "webhook-signature", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "v1,<base64 HMAC-SHA256 of 'id.timestamp.body' with the webhook's secret> (Standard Webhooks)."},
]  # fmt: skip


def _events(ref: Any) -> dict[str, Any]:
    """What a webhook receives (OpenAPI 3.1 ``webhooks``): one CloudEvent per POST, in structured mode."""
    described = {}
    for event_type in EventType:
        described[event_type.value] = {
            "post": {
                "operationId": "event_" + event_type.value.removeprefix("appbackups.").replace(".", "_"),
                "summary": EVENT_SUMMARIES[event_type],
                "description": "Sent to the namespace's webhooks that want it (signed per Standard Webhooks) and to "
                "the Event Grid topic, if one is configured. Retried with back-off for about a day until a 2xx.",
                "tags": ["Events"],
                "parameters": _SIGNATURE_HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/cloudevents+json": {
                            "schema": event_envelope_schema(event_type, ref(EVENT_DATA[event_type], "serialization"))
                        }
                    },
                },
                "responses": {"2XX": {"description": "Received; anything else (or no answer) is tried again."}},
            }
        }
    return described


@bp.api("openapi.json", "GET", RouteSpec("This API description (OpenAPI 3.1)", PUBLIC, tag="Service"))
def openapi_document(request: ApiRequest) -> Reply:
    return Reply(200, build_openapi())
