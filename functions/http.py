"""The HTTP plumbing every route shares: request parsing, the caller's identity, and the one place
that maps core errors to RFC 9457 problem responses."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import azure.functions as func
from azure.core.exceptions import AzureError
from pydantic import BaseModel, ValidationError

from shared.adapters.tables import decode_token
from shared.bootstrap import services
from shared.contracts.common import ENVIRONMENT_ID_PATTERN, ApiModel, FieldError, Problem
from shared.errors import AppError, ErrorKind, InvalidRequest, ServiceUnavailable
from shared.identity import ANONYMOUS, Principal, principal_from_headers

logger = logging.getLogger("appbackups.http")

M = TypeVar("M", bound=BaseModel)

STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 400,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.PRECONDITION_FAILED: 412,
    ErrorKind.UNPROCESSABLE: 422,
    ErrorKind.UNAVAILABLE: 503,
}

PROBLEM_JSON = "application/problem+json"
ENVIRONMENT_ID = re.compile(ENVIRONMENT_ID_PATTERN)


@dataclass
class Reply:
    """What a handler returns: a status, an optional body and headers."""

    status: int = 200
    body: ApiModel | dict[str, Any] | list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteSpec:
    """What the OpenAPI document says about a route; attached to the registered function."""

    summary: str
    request_model: type[BaseModel] | None = None
    response_model: Any = None
    success_status: int = 200
    query: tuple[str, ...] = ()
    tag: str = ""


class ApiRequest:
    def __init__(self, request: func.HttpRequest, caller: Principal) -> None:
        self.raw = request
        self.caller = caller

    def route(self, name: str) -> str:
        return self.raw.route_params[name]

    def environment_id(self, name: str = "env") -> str:
        value = self.route(name)
        if not ENVIRONMENT_ID.match(value):
            raise InvalidRequest(
                f"{value!r} is not an environment id (lower-case letters, digits and hyphens, 3 to 63 characters).",
                code="invalid_environment_id",
            )
        return value

    def continuation_token(self) -> str | None:
        token = self.query("continuationToken")
        if token is None:
            return None
        try:
            decode_token(token)
        except ValueError as error:
            raise InvalidRequest("continuationToken is not a token this API gave out.", code="invalid_query") from error
        return token

    def header(self, name: str) -> str | None:
        return self.raw.headers.get(name)

    def query(self, name: str) -> str | None:
        value = self.raw.params.get(name)
        return value if value not in (None, "") else None

    def query_int(self, name: str, *, default: int, minimum: int, maximum: int) -> int:
        raw = self.query(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError as error:
            raise InvalidRequest(f"Query parameter {name} must be a whole number.", code="invalid_query") from error
        if not minimum <= value <= maximum:
            raise InvalidRequest(
                f"Query parameter {name} must be between {minimum} and {maximum}.", code="invalid_query"
            )
        return value

    def body(self, model: type[M]) -> M:
        raw = self.raw.get_body() or b""
        if not raw.strip():
            raw = b"{}"
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from error
        try:
            return model.model_validate(document)
        except ValidationError as error:
            raise _validation_problem(error) from error


def _validation_problem(error: ValidationError) -> InvalidRequest:
    field_errors = [
        FieldError(field=".".join(str(part) for part in item["loc"]) or "body", message=item["msg"])
        for item in error.errors(include_url=False)
    ]
    summary = "; ".join(f"{item.field}: {item.message}" for item in field_errors[:5])
    return InvalidRequest(f"The request body is not valid: {summary}", code="validation_failed", errors=field_errors)


def json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None, mimetype: str = "application/json"
) -> func.HttpResponse:
    if isinstance(body, BaseModel):
        document: Any = body.model_dump(mode="json", by_alias=True)
    else:
        document = body
    payload = "" if body is None else json.dumps(document, ensure_ascii=False)
    return func.HttpResponse(
        payload,
        status_code=status,
        headers=dict(headers or {}),
        mimetype=mimetype if body is not None else None,
        charset="utf-8",
    )


def problem_response(error: AppError) -> func.HttpResponse:
    status = STATUS_BY_KIND[error.kind]
    errors = error.extensions.get("errors")
    extensions = {key: value for key, value in error.extensions.items() if key != "errors" and value is not None}
    problem = Problem(
        title=error.title,
        status=status,
        detail=error.detail,
        code=error.code,
        errors=errors,
        **extensions,
    )
    headers = {"Retry-After": "30"} if status == 503 else {}
    return json_response(
        status, problem.model_dump(mode="json", by_alias=True, exclude_none=True), headers, PROBLEM_JSON
    )


def unexpected_error_response() -> func.HttpResponse:
    problem = Problem(
        title="Internal error",
        status=500,
        detail="The service failed unexpectedly; the error is logged. Try again, and report it if it persists.",
        code="internal_error",
    )
    return json_response(500, problem.model_dump(mode="json", by_alias=True, exclude_none=True), None, PROBLEM_JSON)


Handler = Callable[[ApiRequest], Reply]


def caller_of(request: func.HttpRequest) -> Principal:
    """The one place a handler's caller comes from (Easy Auth headers, or development mode)."""
    return principal_from_headers(dict(request.headers), development_mode=services().settings.development_mode)


def handle(request: func.HttpRequest, handler: Handler, *, public: bool = False) -> func.HttpResponse:
    try:
        caller = ANONYMOUS if public else caller_of(request)
        reply = handler(ApiRequest(request, caller))
    except AppError as error:
        return problem_response(error)
    except AzureError as error:
        logger.warning("storage call failed: %s", type(error).__name__, exc_info=True)
        return problem_response(_storage_unavailable(error))
    except Exception:
        logger.exception("unhandled error in %s %s", request.method, request.url.split("?")[0])
        return unexpected_error_response()
    return json_response(reply.status, reply.body, reply.headers)


def _storage_unavailable(error: AzureError) -> AppError:
    return ServiceUnavailable(
        f"Storage did not answer as expected ({type(error).__name__}); try again shortly.", code="storage_unavailable"
    )


class ApiBlueprint(func.Blueprint):
    """A Blueprint whose routes are declared with `api`: the handler gets an ApiRequest, returns a
    Reply, and errors become problem responses in one place."""

    def api(
        self,
        route: str,
        method: str,
        spec: RouteSpec,
        *,
        public: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``method route``. A public route (health, the portal page) needs no
        function key and no signed-in caller; every other route needs both."""
        auth_level = func.AuthLevel.ANONYMOUS if public else func.AuthLevel.FUNCTION

        def register(handler: Handler) -> Handler:
            def entrypoint(req: func.HttpRequest) -> func.HttpResponse:
                return handle(req, handler, public=public)

            entrypoint.__name__ = handler.__name__
            entrypoint.__qualname__ = handler.__qualname__
            entrypoint.__doc__ = handler.__doc__
            entrypoint.route_spec = spec  # type: ignore[attr-defined]
            self.route(route=route, methods=[method], auth_level=auth_level)(entrypoint)
            return handler

        return register
