"""The HTTP plumbing every route shares: each route's declared spec (access, query parameters, what the
API description says), request parsing, the caller's identity, and the one place that maps core errors
to RFC 9457 problem responses."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import azure.functions as func
from pydantic import BaseModel, ValidationError

from shared.access.authorization import Access, Asked, Scope
from shared.access.identity import principal_from_headers
from shared.adapters.errors import StorageFault
from shared.adapters.tables import decode_token
from shared.bootstrap import services
from shared.contracts.common import ENVIRONMENT_ID_PATTERN, NAMESPACE_PATTERN, ApiModel, FieldError, Problem
from shared.domain.access import ANONYMOUS, Permission, Principal
from shared.errors import AppError, ErrorKind, InvalidRequest, ServiceUnavailable
from shared.telemetry.telemetry import Telemetry, default_telemetry

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
NAMESPACE = re.compile(NAMESPACE_PATTERN)


@dataclass
class Reply:
    """What a handler returns: a status, an optional JSON body (or raw ``content`` of a given type),
    and headers."""

    status: int = 200
    body: ApiModel | dict[str, Any] | list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    content_type: str | None = None


PUBLIC = Access(Scope.PUBLIC)
SIGNED_IN = Access(Scope.SIGNED_IN)
REGISTRATION = Access(Scope.REGISTRATION, (Permission.NAMESPACE_ADMIN,))
RESTORE = Access(Scope.RESTORE, (Permission.MANAGE_BACKUPS, Permission.STOP_APPS))
RESTORE_STATUS = Access(Scope.RESTORE_STATUS, (Permission.MANAGE_BACKUPS,))
RESTORE_CANCEL = Access(Scope.RESTORE_STATUS, (Permission.MANAGE_BACKUPS, Permission.STOP_APPS))
DRILL_STATUS = Access(Scope.DRILL_STATUS, (Permission.MANAGE_BACKUPS,))


def in_environment(*permissions: Permission) -> Access:
    return Access(Scope.ENVIRONMENT, permissions)


def in_namespace(*permissions: Permission) -> Access:
    return Access(Scope.NAMESPACE, permissions)


@dataclass(frozen=True, kw_only=True)
class QueryParam:
    """A query parameter as a route declares it (``RouteSpec.query``): the OpenAPI document describes it
    from here, and the handler reads it through it (``ApiRequest.query_int`` and the like), so what is
    documented and what is accepted are one statement."""

    name: str
    description: str

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "description": self.description}


@dataclass(frozen=True, kw_only=True)
class IntQuery(QueryParam):
    default: int
    minimum: int
    maximum: int

    def schema(self) -> dict[str, Any]:
        return {
            "type": "integer",
            "minimum": self.minimum,
            "maximum": self.maximum,
            "default": self.default,
            "description": self.description,
        }


@dataclass(frozen=True, kw_only=True)
class FlagQuery(QueryParam):
    """``true`` or ``false`` (any case); absent is false."""

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": ["true", "false"], "description": self.description}


@dataclass(frozen=True, kw_only=True)
class ChoiceQuery(QueryParam):
    choices: tuple[str, ...]

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices), "description": self.description}


def page_size(*, default: int, maximum: int) -> IntQuery:
    """The ``limit`` of a paged list."""
    return IntQuery(name="limit", description="Page size.", default=default, minimum=1, maximum=maximum)


CONTINUATION = QueryParam(name="continuationToken", description="From the previous page's continuationToken.")


@dataclass(frozen=True)
class RouteSpec:
    """What the OpenAPI document says about a route, and who may call it; kept with the registered function."""

    summary: str
    access: Access
    request_model: type[BaseModel] | None = None
    response_model: Any = None
    success_status: int = 200
    also_success: tuple[int, ...] = ()  # other success statuses, with the same body (e.g. 201 for a PUT that creates)
    other_success: tuple[tuple[int, type[BaseModel], str], ...] = ()  # other success statuses with their own body
    media_types: tuple[str, ...] = ()  # what a non-JSON success body may be (the Backups page's files)
    query: tuple[QueryParam, ...] = ()  # the only query parameters the handler may read
    tag: str = ""


class ApiRequest:
    def __init__(
        self, request: func.HttpRequest, caller: Principal, template: str = "", query: tuple[QueryParam, ...] = ()
    ) -> None:
        self.raw = request
        self.caller = caller
        self.template = template  # the route as registered, e.g. environments/{env}/backups/{id}
        self._declared = query  # the route's RouteSpec.query

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

    def namespace(self, name: str = "ns") -> str:
        value = self.route(name)
        if not NAMESPACE.match(value):
            raise InvalidRequest(f"{value!r} is not a namespace name.", code="invalid_namespace")
        return value

    def body_field(self, name: str) -> str | None:
        """One string field of the JSON body, read leniently (validation proper is the handler's)."""
        try:
            document = json.loads(self.raw.get_body() or b"{}")
        except (ValueError, UnicodeDecodeError):
            return None
        value = document.get(name) if isinstance(document, dict) else None
        return value if isinstance(value, str) else None

    def continuation_token(self) -> str | None:
        token = self._query(CONTINUATION)
        if token is None:
            return None
        try:
            decode_token(token)
        except ValueError as error:
            raise InvalidRequest("continuationToken is not a token this API gave out.", code="invalid_query") from error
        return token

    def header(self, name: str) -> str | None:
        return self.raw.headers.get(name)

    def _query(self, param: QueryParam) -> str | None:
        if param not in self._declared:
            undeclared = (
                f"{self.template}: the handler reads query parameter {param.name!r}, undeclared in its RouteSpec"
            )
            raise LookupError(undeclared)
        value = self.raw.params.get(param.name)
        return value if value not in (None, "") else None

    def query_flag(self, param: FlagQuery) -> bool:
        raw = self._query(param)
        if raw is None:
            return False
        if raw.lower() not in ("true", "false"):
            raise InvalidRequest(f"Query parameter {param.name} must be true or false.", code="invalid_query")
        return raw.lower() == "true"

    def query_int(self, param: IntQuery) -> int:
        raw = self._query(param)
        if raw is None:
            return param.default
        try:
            value = int(raw)
        except ValueError as error:
            raise InvalidRequest(
                f"Query parameter {param.name} must be a whole number.", code="invalid_query"
            ) from error
        if not param.minimum <= value <= param.maximum:
            raise InvalidRequest(
                f"Query parameter {param.name} must be between {param.minimum} and {param.maximum}.",
                code="invalid_query",
            )
        return value

    def query_choice(self, param: ChoiceQuery) -> str | None:
        raw = self._query(param)
        if raw is not None and raw not in param.choices:
            *others, last = param.choices
            either = f"{', '.join(others)} or {last}" if others else last
            raise InvalidRequest(f"{param.name} must be {either}.", code="invalid_query")
        return raw

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
    """The one place a handler's caller comes from: App Service Authentication's headers — trusted
    only where Easy Auth is on (it strips forged ones), or in development mode, which stands in a
    local developer when they are absent and is refused when the app runs in Azure."""
    settings = services().settings
    if settings.development_mode and settings.running_in_azure:
        logger.error("refusing requests: APPBACKUPS_DEVELOPMENT_MODE is on in Azure (WEBSITE_INSTANCE_ID is set)")
        raise ServiceUnavailable(
            "The service is misconfigured: development mode is on in Azure. An administrator must turn it off.",
            code="authentication_not_configured",
        )
    if not settings.development_mode and not settings.easy_auth_enabled:
        logger.error("refusing requests: App Service Authentication is off and development mode is not on")
        raise ServiceUnavailable(
            "The service is misconfigured: App Service Authentication is not enabled, so callers cannot be "
            "identified. An administrator must enable it.",
            code="authentication_not_configured",
        )
    return principal_from_headers(dict(request.headers), development_mode=settings.development_mode)


def authorize(access: Access, request: ApiRequest) -> None:
    """Enforce a route's declared access (shared/access/authorization.py) on what the request names."""
    if access.scope in (Scope.PUBLIC, Scope.SIGNED_IN):
        return
    services().authorization.authorize(access, asked(access.scope, request))


def asked(scope: Scope, request: ApiRequest) -> Asked:
    """What the request names that its scope needs, read from the route and the body."""
    caller, method, route = request.caller, request.raw.method.upper(), request.template
    if scope is Scope.NAMESPACE:
        return Asked(caller=caller, method=method, route=route, namespace=request.namespace())
    if scope in (Scope.RESTORE_STATUS, Scope.DRILL_STATUS):
        operation_id = request.route("restoreId" if scope is Scope.RESTORE_STATUS else "drillId")
        return Asked(caller=caller, method=method, route=route, operation_id=operation_id)
    environment_id = request.environment_id()
    if scope is Scope.REGISTRATION:
        namespace = request.body_field("namespace")
        return Asked(caller=caller, method=method, route=route, environment_id=environment_id, namespace=namespace)
    target = request.body_field("targetEnvironment") if scope is Scope.RESTORE else None
    return Asked(
        caller=caller,
        method=method,
        route=route,
        environment_id=environment_id,
        target_environment_id=target if target and ENVIRONMENT_ID.match(target) else None,
    )


def _telemetry() -> Telemetry:
    try:
        return services().telemetry  # the first call also sets up where telemetry goes
    except Exception:  # settings that cannot build the services: the request answers that itself
        return default_telemetry()


def handle(
    request: func.HttpRequest, handler: Handler, spec: RouteSpec, template: str = "", trace_parent: str | None = None
) -> func.HttpResponse:
    """Answer the request within its span: a child of ``trace_parent`` (the host's invocation) or of the caller's
    ``traceparent`` header, the parent of every operation the request launches."""
    telemetry = _telemetry()
    parents = (trace_parent, request.headers.get("traceparent"))
    method = request.method.upper()
    with telemetry.request(method, template, urlsplit(request.url).path, parents) as span:
        response = _answer(request, handler, spec, template)
        telemetry.responded(span, response.status_code)
        return response


def _answer(request: func.HttpRequest, handler: Handler, spec: RouteSpec, template: str) -> func.HttpResponse:
    access = spec.access
    try:
        caller = ANONYMOUS if access.scope is Scope.PUBLIC else caller_of(request)
        api_request = ApiRequest(request, caller, template, spec.query)
        authorize(access, api_request)
        reply = handler(api_request)
    except AppError as error:
        return problem_response(error)
    except StorageFault as error:
        logger.warning("storage call failed: %s", error.error_type, exc_info=True)
        return problem_response(_storage_unavailable(error))
    except Exception:
        logger.exception("unhandled error in %s %s", request.method, request.url.split("?")[0])
        return unexpected_error_response()
    if reply.content is not None:
        return func.HttpResponse(
            reply.content, status_code=reply.status, headers=reply.headers, mimetype=reply.content_type
        )
    return json_response(reply.status, reply.body, reply.headers)


def _storage_unavailable(error: StorageFault) -> AppError:
    return ServiceUnavailable(
        f"Storage did not answer as expected ({error.error_type}); try again shortly.", code="storage_unavailable"
    )


class ApiFunctionApp(func.FunctionApp):
    """The FunctionApp, indexed once: ``get_functions()`` builds the functions on its first call and returns
    the same ones after, where FunctionApp's own refuses a second call (it takes each function for a duplicate
    of itself). The host indexes the app (the Python worker, the development host, the tests), and the
    OpenAPI document (functions/openapi.py) reads the same functions: no second route table."""

    def __init__(self, http_auth_level: func.AuthLevel | str = func.AuthLevel.FUNCTION) -> None:
        super().__init__(http_auth_level=http_auth_level)
        self._indexed: list[func.Function] | None = None
        self._indexing = threading.Lock()

    def get_functions(self) -> list[func.Function]:
        with self._indexing:
            if self._indexed is None:
                self._indexed = super().get_functions()
            return list(self._indexed)


class ApiBlueprint(func.Blueprint):
    """A Blueprint whose routes are declared with `api`: the handler gets an ApiRequest, returns a
    Reply, and errors become problem responses in one place."""

    def api(self, route: str, method: str, spec: RouteSpec) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``method route``. A public route (health, the API description, the
        portal page) needs no function key and no signed-in caller; every other route needs both, and
        the permissions its ``spec.access`` declares."""
        auth_level = func.AuthLevel.ANONYMOUS if spec.access.scope is Scope.PUBLIC else func.AuthLevel.FUNCTION

        def register(handler: Handler) -> Handler:
            # The Python worker hands ``context`` to a function that declares it, annotated exactly as
            # azure.functions.Context; a test calling the function with the request alone has none.
            def entrypoint(req: func.HttpRequest, context: func.Context = None) -> func.HttpResponse:  # type: ignore[assignment]
                trace_parent = context.trace_context.trace_parent if context is not None else None
                return handle(req, handler, spec, route, trace_parent)

            entrypoint.__name__ = handler.__name__
            entrypoint.__qualname__ = handler.__qualname__
            entrypoint.__doc__ = handler.__doc__
            entrypoint.route_spec = spec  # type: ignore[attr-defined]
            self.route(route=route, methods=[method], auth_level=auth_level)(entrypoint)
            return handler

        return register
