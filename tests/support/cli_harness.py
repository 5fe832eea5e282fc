"""The CLI against the app's own handlers, in process: a requests transport that hands each request to the
registered function whose route (as the served OpenAPI names it) matches, on the installed services (the twins,
in unit tests), and runs the worker's queue before each request, so that what the CLI waits for gets done."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from cli import app as cli_app
from cli import session as cli_session
from tests.support.functions import call

BASE = "http://appbackups.test/api"


def _routes() -> list[tuple[re.Pattern[str], str, str]]:
    status, _, document = call("openapi_document", "GET", "openapi.json")
    assert status == 200
    routes = []
    for path, operations in document["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{([^}]+)\}", r"(?P<\1>[^/]+)", path) + "$")
        for method, operation in operations.items():
            routes.append((pattern, method.upper(), operation["operationId"]))
    return routes


class FunctionsAdapter(BaseAdapter):
    def __init__(self, before: Callable[[], Any] | None = None) -> None:
        super().__init__()
        self.routes = _routes()
        self.before = before
        self.seen: list[tuple[str, str]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(str(request.url))
        self.seen.append((str(request.method), parts.path))
        if self.before is not None:
            self.before()
        for pattern, method, name in self.routes:
            found = pattern.match(parts.path)
            if found and method == request.method:
                route = {key: unquote(value) for key, value in found.groupdict().items()}
                body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
                status, headers, document = call(
                    name,
                    method,
                    parts.path.removeprefix("/api/"),
                    route=route,
                    raw_body=body,
                    headers=dict(request.headers),
                    params=dict(parse_qsl(parts.query)),
                )
                content = document.encode() if isinstance(document, str) else json.dumps(document).encode()
                return _response(request, status, headers, b"" if document is None else content)
        problem = {"title": "Not Found", "status": 404, "detail": f"no route {parts.path}", "code": "no_route"}
        return _response(request, 404, {"Content-Type": "application/problem+json"}, json.dumps(problem).encode())

    def close(self) -> None:
        return


def _response(
    request: requests.PreparedRequest, status: int, headers: dict[str, str], content: bytes
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = HTTPStatus(status).phrase
    response.headers = CaseInsensitiveDict(headers)
    response._content = content
    response.encoding = "utf-8"
    response.url = str(request.url)
    response.request = request
    return response


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


class CliHarness:
    """``run('backups', 'list', ENV)``: one invocation of the CLI, its exit code and output."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        adapter: FunctionsAdapter,
        width: int = 80,
    ) -> None:
        self.adapter = adapter
        monkeypatch.setattr(cli_session.out, "width", width)
        monkeypatch.setattr(cli_session.err, "width", width)
        self._capsys = capsys
        session = requests.Session()
        session.mount(BASE, adapter)
        monkeypatch.setattr(cli_session, "transport", lambda: session)
        monkeypatch.setenv("APPBACKUPS_CONFIG", "/nonexistent/appbackups.toml")
        for name in ("APPBACKUPS_URL", "APPBACKUPS_FUNCTION_KEY", "APPBACKUPS_TOKEN", "APPBACKUPS_PRINCIPAL"):
            monkeypatch.delenv(name, raising=False)

    def run(self, *arguments: str) -> Result:
        self._capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli_app.command().main(["--url", BASE, *arguments], prog_name="appbackups")
        captured = self._capsys.readouterr()
        code = exited.value.code
        return Result(code if isinstance(code, int) else 1, captured.out, captured.err)
