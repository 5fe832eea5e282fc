"""The HTTP front end: routes requests to HTTP-triggered functions and serves the admin invoke API.

As with Core Tools, function keys (``authLevel``) are not enforced locally. Responses to routing errors and
failed invocations are ``application/problem+json`` documents; a function's exception never reaches the
client (its traceback goes to the host log).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

from devhost.invoker import InFlight, Invoker
from devhost.loader import HTTP_TRIGGER, LoadedApp
from devhost.manual import NotManuallyRunnable, manual_details, manual_trigger_value
from devhost.routing import MethodNotAllowed, RouteMatch, Router, RouteTemplate

log = logging.getLogger("devhost.http")

PROBLEM_TYPE = "application/problem+json"
ADMIN_PREFIX = "/admin/functions/"
_NO_BODY_STATUSES = {204, 304}
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}

BackgroundRunner = Callable[[Any, Any, str], None]


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


class DevHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        *,
        app: LoadedApp,
        router: Router,
        invoker: Invoker,
        run_in_background: BackgroundRunner,
    ) -> None:
        self.app = app
        self.router = router
        self.invoker = invoker
        self.run_in_background = run_in_background
        self.closing = False
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    @property
    def inflight(self) -> InFlight:
        return self.invoker.inflight

    def opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def drop_idle_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections so they end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: DevHttpServer
    server_version = "devhost"

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def handle_one_request(self) -> None:
        if self.server.closing:
            self.close_connection = True
            return
        super().handle_one_request()

    def __getattr__(self, name: str) -> Any:
        # do_GET, do_POST, … for any method: routing decides what is allowed.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    # -- request

    def _handle(self) -> None:
        with self.server.inflight.track():
            started = time.perf_counter()
            try:
                body = self._read_body()
            except ValueError as error:
                self._send(400, [("Content-Type", PROBLEM_TYPE)], problem(400, str(error), "invalid_request"))
                self.close_connection = True
                return
            path = urlsplit(self.path).path or "/"
            if path.lower().startswith(ADMIN_PREFIX):
                status = self._admin(unquote(path[len(ADMIN_PREFIX) :]), body)
            else:
                status = self._route(path, body)
            log.debug("%s %s -> %d (%dms)", self.command, self.path, status, (time.perf_counter() - started) * 1000)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError as error:
                    raise ValueError("malformed chunked request body") from error
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError as error:
            raise ValueError(f"invalid Content-Length {length!r}") from error
        return self.rfile.read(size) if size > 0 else b""

    def _route(self, path: str, body: bytes) -> int:
        resolution = self.server.router.resolve(self.command, path)
        if isinstance(resolution, MethodNotAllowed):
            allowed = ", ".join(resolution.allowed)
            detail = f"{self.command} is not allowed for {path}; allowed: {allowed}"
            headers = [("Content-Type", PROBLEM_TYPE), ("Allow", allowed)]
            return self._send(405, headers, problem(405, detail, "method_not_allowed"))
        if not isinstance(resolution, RouteMatch):
            detail = f"no function route matches {self.command} {path}"
            return self._send(404, [("Content-Type", PROBLEM_TYPE)], problem(404, detail, "route_not_found"))
        function = resolution.route.target
        request = func.HttpRequest(
            self.command,
            self._full_url(),
            headers=self._request_headers(),
            params=dict(_first_values(urlsplit(self.path).query)),
            route_params=resolution.params,
            body=body,
        )
        result = self.server.invoker.invoke(function, request)
        if not result.succeeded:
            detail = f"function '{function.name}' failed (invocation {result.invocation_id}); see the host log"
            return self._send(500, [("Content-Type", PROBLEM_TYPE)], problem(500, detail, "function_failed"))
        try:
            status, headers, payload = to_http_response(result.value)
        except TypeError as error:
            log.error("Function '%s' returned something that is not an HTTP response: %s", function.name, error)
            detail = f"function '{function.name}' returned an invalid response; see the host log"
            return self._send(500, [("Content-Type", PROBLEM_TYPE)], problem(500, detail, "invalid_response"))
        return self._send(status, headers, payload)

    def _admin(self, name: str, body: bytes) -> int:
        if self.command != "POST":
            detail = "the admin API runs a function with POST /admin/functions/{name}"
            headers = [("Content-Type", PROBLEM_TYPE), ("Allow", "POST")]
            return self._send(405, headers, problem(405, detail, "method_not_allowed"))
        function = self.server.app.find(name.strip("/"))
        if function is None:
            detail = f"there is no function named '{name}'"
            return self._send(404, [("Content-Type", PROBLEM_TYPE)], problem(404, detail, "function_not_found"))
        try:
            document = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError as error:
            detail = f'the body must be JSON like {{"input": "..."}}: {error}'
            return self._send(400, [("Content-Type", PROBLEM_TYPE)], problem(400, detail, "invalid_request"))
        text = document.get("input") if isinstance(document, dict) else None
        if not isinstance(document, dict) or (text is not None and not isinstance(text, str)):
            detail = 'the body must be a JSON object whose "input" is a string'
            return self._send(400, [("Content-Type", PROBLEM_TYPE)], problem(400, detail, "invalid_request"))
        try:
            value = manual_trigger_value(function, text)
        except NotManuallyRunnable as error:
            return self._send(400, [("Content-Type", PROBLEM_TYPE)], problem(400, str(error), "not_runnable"))
        self.server.run_in_background(function, value, manual_details(function))
        return self._send(202, [], b"")

    def _full_url(self) -> str:
        if self.path.startswith(("http://", "https://")):
            return self.path
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}{self.path}"

    def _request_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return headers

    # -- response

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> int:
        if status in _NO_BODY_STATUSES:
            body = b""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status not in _NO_BODY_STATUSES:
            self.send_header("Content-Length", str(len(body)))
        if self.server.closing:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()
        return status


def _first_values(query: str) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        seen.setdefault(name, value)
    return list(seen.items())


def to_http_response(value: Any) -> tuple[int, list[tuple[str, str]], bytes]:
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
