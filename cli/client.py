"""The HTTP API, as the CLI uses it: problem responses become ApiError with an exit code."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests

from cli.config import ClientConfig

# Exit codes a script can rely on.
OK, FAILED, USAGE, NOT_FOUND, CONFLICT, DENIED, UNAVAILABLE = 0, 1, 2, 3, 4, 5, 6


class ApiError(Exception):
    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, exit_code: int = FAILED
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.exit_code = exit_code


def exit_code_for(status: int) -> int:
    if status == 404:
        return NOT_FOUND
    if status in (409, 412, 422):
        return CONFLICT
    if status in (401, 403):
        return DENIED
    if status in (502, 503, 504):
        return UNAVAILABLE
    if status == 400:
        return USAGE
    return FAILED


class Client:
    def __init__(self, config: ClientConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self._session = session or requests.Session()
        headers = {"Accept": "application/json"}
        if config.function_key:
            headers["x-functions-key"] = config.function_key
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        if config.principal:
            headers["X-MS-CLIENT-PRINCIPAL-ID"] = config.principal
        self._session.headers.update(headers)

    def url(self, path: str) -> str:
        if path.startswith("/api/"):
            path = path[len("/api") :]
        return f"{self.config.url}{path}"

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> requests.Response:
        try:
            response = self._session.request(
                method, self.url(path), json=json, params=params, timeout=self.config.timeout
            )
        except requests.RequestException as error:
            raise ApiError(
                f"cannot reach {self.config.url}: {error.__class__.__name__}", exit_code=UNAVAILABLE
            ) from error
        if response.status_code >= 400:
            raise self._problem(response)
        return response

    def _problem(self, response: requests.Response) -> ApiError:
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        detail = problem.get("detail") or response.reason or "request failed"
        errors = problem.get("errors") or []
        if errors:
            detail += " (" + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors) + ")"
        return ApiError(
            f"{response.status_code} {detail}",
            status=response.status_code,
            code=problem.get("code"),
            exit_code=exit_code_for(response.status_code),
        )

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def post(self, path: str, body: Any = None) -> requests.Response:
        return self.request("POST", path, json=body if body is not None else {})

    def pages(self, path: str, limit: int = 100) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.get(path, limit=limit, continuationToken=token)
            yield from page["items"]
            token = page.get("continuationToken")
            if not token:
                return

    def wait(
        self,
        path: str,
        *,
        done: Callable[[dict[str, Any]], bool],
        on_update: Callable[[dict[str, Any]], None] | None = None,
        interval: float = 1.0,
        timeout: float = 6 * 3600,
        interrupted: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Poll ``path`` until ``done``; KeyboardInterrupt once ``interrupted`` is set (Ctrl-C's flag)."""
        interrupted = interrupted or threading.Event()
        deadline = time.monotonic() + timeout
        while True:
            if interrupted.is_set():
                raise KeyboardInterrupt
            document = self.get(path)
            if on_update is not None:
                on_update(document)
            if done(document):
                return document
            if time.monotonic() > deadline:
                raise ApiError(f"gave up waiting for {path}", exit_code=FAILED)
            interrupted.wait(interval)

    def raw(self) -> requests.Session:
        """A plain session for storage (SAS) URLs: no API headers."""
        return requests.Session()
