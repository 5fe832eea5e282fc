"""The WSGI application the development host serves: a request to an HTTP-triggered function or to the admin API.

A request below the route prefix becomes an ``azure.functions.HttpRequest`` for the function whose route
matches (:mod:`devhost.routing`), and what the function returns becomes the response, as the Python worker
converts it. ``POST /admin/functions/NAME`` runs a timer or queue function in the background, as Core Tools'
admin API does. As with Core Tools, function keys (``authLevel``) are not enforced locally.

Routing errors and failed invocations are ``application/problem+json`` documents (RFC 9457); a function's
exception never reaches the client (its traceback goes to the host log).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import azure.functions as func
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

from devhost.invoker import Invoker
from devhost.loader import HTTP_TRIGGER, LoadedApp
from devhost.manual import NotManuallyRunnable, manual_details, manual_trigger_value
from devhost.routing import MethodNotAllowed, RouteMatch, Router, RouteTemplate

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("devhost.http")

PROBLEM_TYPE = "application/problem+json"
ADMIN_PREFIX = "/admin/functions/"
_NO_BODY_STATUSES = {204, 304}
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}

BackgroundRunner = Callable[[Any, Any, str], None]
Response = tuple[int, list[tuple[str, str]], bytes]


def problem(status: int, detail: str, code: str) -> bytes:
    """An RFC 9457 problem document."""
    document = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    return json.dumps(document).encode("utf-8")


def _problem(status: int, detail: str, code: str, *headers: tuple[str, str]) -> Response:
    return status, [("Content-Type", PROBLEM_TYPE), *headers], problem(status, detail, code)


def build_router(app: LoadedApp, route_prefix: str) -> Router:
    """The router over the app's HTTP functions, read from their trigger metadata."""
    routes = []
    for function in app.of_type(HTTP_TRIGGER):
        try:
            RouteTemplate.parse(function.route)
        except ValueError as error:
            raise ValueError(f"HTTP function '{function.name}': {error}") from error
        routes.append((function.route, function.methods, function))
    return Router(routes, prefix=route_prefix)


class FunctionsWsgiApp:
    """``app(environ, start_response)``: routes each request to a function (or the admin API) and answers it."""

    def __init__(self, app: LoadedApp, router: Router, invoker: Invoker, run_in_background: BackgroundRunner) -> None:
        self.app = app
        self.router = router
        self.invoker = invoker
        self.run_in_background = run_in_background

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        target = _request_target(environ)
        started = time.perf_counter()
        try:
            status, headers, body = self._respond(request, target)
        except Exception:  # a bug of the host, not of the function (the invoker catches those)
            log.exception("The development host failed to answer %s %s", request.method, target)
            detail = "the development host failed to answer this request; see its log"
            status, headers, body = _problem(500, detail, "host_error")
        if status in _NO_BODY_STATUSES:
            body = b""
        else:
            headers.append(("Content-Length", str(len(body))))
        log.debug("%s %s -> %d (%dms)", request.method, target, status, (time.perf_counter() - started) * 1000)
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}", headers)
        return [b"" if request.method == "HEAD" else body]

    def _respond(self, request: Request, target: str) -> Response:
        try:
            body = _read_body(request)
        except ValueError as error:
            return _problem(400, str(error), "invalid_request")
        path = urlsplit(target).path or "/"
        if path.lower().startswith(ADMIN_PREFIX):
            return self._admin(request.method, unquote(path[len(ADMIN_PREFIX) :]), body)
        return self._route(request, target, path, body)

    def _route(self, request: Request, target: str, path: str, body: bytes) -> Response:
        method = request.method
        resolution = self.router.resolve(method, path)
        if isinstance(resolution, MethodNotAllowed):
            allowed = ", ".join(resolution.allowed)
            detail = f"{method} is not allowed for {path}; allowed: {allowed}"
            return _problem(405, detail, "method_not_allowed", ("Allow", allowed))
        if not isinstance(resolution, RouteMatch):
            return _problem(404, f"no function route matches {method} {path}", "route_not_found")
        function = resolution.route.target
        http_request = func.HttpRequest(
            method,
            _full_url(request.environ, target),
            headers={name.lower(): value for name, value in request.headers.items()},
            params=dict(_first_values(urlsplit(target).query)),
            route_params=resolution.params,
            body=body,
        )
        result = self.invoker.invoke(function, http_request)
        if not result.succeeded:
            detail = f"function '{function.name}' failed (invocation {result.invocation_id}); see the host log"
            return _problem(500, detail, "function_failed")
        try:
            return to_http_response(result.value)
        except TypeError as error:
            log.error("Function '%s' returned something that is not an HTTP response: %s", function.name, error)
            detail = f"function '{function.name}' returned an invalid response; see the host log"
            return _problem(500, detail, "invalid_response")

    def _admin(self, method: str, name: str, body: bytes) -> Response:
        if method != "POST":
            detail = "the admin API runs a function with POST /admin/functions/{name}"
            return _problem(405, detail, "method_not_allowed", ("Allow", "POST"))
        function = self.app.find(name.strip("/"))
        if function is None:
            return _problem(404, f"there is no function named '{name}'", "function_not_found")
        try:
            document = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError as error:
            return _problem(400, f'the body must be JSON like {{"input": "..."}}: {error}', "invalid_request")
        text = document.get("input") if isinstance(document, dict) else None
        if not isinstance(document, dict) or (text is not None and not isinstance(text, str)):
            return _problem(400, 'the body must be a JSON object whose "input" is a string', "invalid_request")
        try:
            value = manual_trigger_value(function, text)
        except NotManuallyRunnable as error:
            return _problem(400, str(error), "not_runnable")
        self.run_in_background(function, value, manual_details(function))
        return 202, [], b""


def _read_body(request: Request) -> bytes:
    """The whole request body; werkzeug's server has decoded a chunked one. ``ValueError`` if malformed."""
    environ = request.environ
    length = environ.get("CONTENT_LENGTH", "").strip()
    if length and not environ.get("wsgi.input_terminated") and not length.isdigit():
        raise ValueError(f"invalid Content-Length {length!r}")
    try:
        return request.get_data(cache=False)
    except OSError as error:  # werkzeug's DechunkedInput: a bad chunk header or terminator
        raise ValueError(f"malformed chunked request body: {error}") from error


def _request_target(environ: WSGIEnvironment) -> str:
    """The request target as the client sent it (path still percent-encoded, and the query)."""
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if raw:
        return str(raw).encode("latin-1").decode("utf-8", "replace")  # PEP 3333 strings are bytes as latin-1
    path = quote(str(environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8", "replace"))
    query = environ.get("QUERY_STRING")
    return f"{path}?{query}" if query else path


def _full_url(environ: WSGIEnvironment, target: str) -> str:
    if target.startswith(("http://", "https://")):
        return target
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    return f"http://{host}{target}"


def _first_values(query: str) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        seen.setdefault(name, value)
    return list(seen.items())


def to_http_response(value: Any) -> Response:
    """Status, headers and body for what an HTTP function returned (as the Python worker converts it)."""
    if isinstance(value, func.HttpResponse):
        headers = [(name, str(item)) for name, item in value.headers.items() if name.lower() not in _HOP_BY_HOP]
        if not any(name.lower() == "content-type" for name, _ in headers) and value.mimetype:
            content_type = f"{value.mimetype}; charset={value.charset}" if value.charset else value.mimetype
            headers.append(("Content-Type", content_type))
        return int(value.status_code), headers, value.get_body()
    if value is None:
        return 204, [], b""
    if isinstance(value, str):
        return 200, [("Content-Type", "text/plain; charset=utf-8")], value.encode("utf-8")
    if isinstance(value, bytes | bytearray):
        return 200, [("Content-Type", "application/octet-stream")], bytes(value)
    if isinstance(value, dict | list):
        return 200, [("Content-Type", "application/json")], json.dumps(value).encode("utf-8")
    raise TypeError(f"cannot turn a {type(value).__name__} into an HTTP response")
