"""The storage clients' transport reads the environment (proxy variables, ~/.netrc) only when a proxy is
set: shown by what reaches a local server standing in for the blob endpoint, or for the proxy."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shared.clients import StorageClients
from shared.config import StorageConnection
from tools.azurite import ACCOUNT_KEY, ACCOUNT_NAME

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


@contextmanager
def recording_server() -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """A server that answers 404 to everything and records each request line and Authorization header."""
    seen: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.requestline, self.headers.get("Authorization", "")))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def probe_blob_endpoint(port: int) -> None:
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};"
        f"QueueEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};"
    )
    clients = StorageClients(StorageConnection(connection_string=connection))
    assert clients.blob_service.get_container_client("snapshots").exists(retry_total=0) is False


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    return netrc


def test_without_a_proxy_the_environment_is_not_read(clean_environment: Path) -> None:
    with recording_server() as (port, seen):
        probe_blob_endpoint(port)
    assert seen, "the request did not reach the blob endpoint"
    for _, authorization in seen:
        assert authorization.startswith("SharedKey "), "~/.netrc was read: its credentials replaced the SDK's"


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_a_proxy_variable_is_honoured(clean_environment: Path, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    with recording_server() as (endpoint, direct), recording_server() as (proxy, proxied):
        monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy}")
        probe_blob_endpoint(endpoint)
    assert direct == []
    assert proxied, "the request did not go through the proxy"
    assert all(f"http://127.0.0.1:{endpoint}/" in line for line, _ in proxied)  # a proxy gets absolute URIs
