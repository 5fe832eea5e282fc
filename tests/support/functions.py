"""Call registered functions the way the host does: find them in the FunctionApp, invoke the user function."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

import function_app

# FunctionApp.get_functions() may be called once per app (it refuses to index twice), as in the host.
_FUNCTIONS = {function.get_function_name(): function for function in function_app.app.get_functions()}


def http_function(name: str):  # type: ignore[no-untyped-def]
    return _FUNCTIONS[name].get_user_function()


def call(
    name: str,
    method: str,
    path: str,
    *,
    route: dict[str, str] | None = None,
    body: Any = None,
    raw_body: bytes | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    payload = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else b"")
    request = func.HttpRequest(
        method,
        f"http://localhost/api/{path}",
        headers=headers or {},
        params=params or {},
        route_params=route or {},
        body=payload,
    )
    response = http_function(name)(request)
    text = response.get_body().decode()
    is_json = (response.mimetype or "application/json").endswith("json")
    document = (json.loads(text) if is_json else text) if text else None
    headers = dict(response.headers)
    if response.mimetype and "Content-Type" not in headers:  # the host turns mimetype into Content-Type
        headers["Content-Type"] = f"{response.mimetype}; charset={response.charset}"
    return response.status_code, headers, document
