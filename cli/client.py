"""The HTTP transport to the API (the caller's headers on every request), and the exit codes a script relies
on. What is requested and read back, problems included, is cli/api's."""

from __future__ import annotations

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
        return f"{self.config.url}{path}"

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> requests.Response:
        """Any answer, problems included; ApiError (exit 6) only when the API cannot be reached."""
        try:
            return self._session.request(method, self.url(path), json=json, params=params, timeout=self.config.timeout)
        except requests.RequestException as error:
            raise ApiError(
                f"cannot reach {self.config.url}: {error.__class__.__name__}", exit_code=UNAVAILABLE
            ) from error
