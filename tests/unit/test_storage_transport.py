"""The blob transport trusts the environment (netrc, proxy variables) only when a proxy is set."""

from __future__ import annotations

import pytest

from shared.clients import StorageClients
from shared.config import StorageConnection
from tools.azurite import connection_string

AZURITE = connection_string(10000, 10001, 10002)  # nothing is sent: only the client is built
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


def _blob_session_trusts_environment() -> bool:
    clients = StorageClients(StorageConnection(connection_string=AZURITE))
    return clients.blob_service._pipeline._transport.session.trust_env  # type: ignore[attr-defined]


def test_without_a_proxy_the_session_does_not_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert _blob_session_trusts_environment() is False


@pytest.mark.parametrize("variable", PROXY_VARIABLES)
def test_a_proxy_variable_makes_the_session_read_the_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "http://proxy.example:3128")
    assert _blob_session_trusts_environment() is True
