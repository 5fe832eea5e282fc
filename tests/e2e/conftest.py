from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.bootstrap import Services, build_services
from shared.config import STORAGE_CONNECTION, Settings
from tests.support.apphost import AppHost, start_app_host
from tools import azurite as azurite_launcher
from tools.provision import provision


@pytest.fixture(scope="session")
def app_host(storage_services, storage_connection_string, tmp_path_factory) -> Iterator[AppHost]:
    """The real function app served by the development host on a free port, against the session's Azurite."""
    host = start_app_host(storage_connection_string, tmp_path_factory.mktemp("apphost") / "devhost.log")
    yield host
    host.stop()


@pytest.fixture(scope="session")
def api(app_host: AppHost) -> str:
    return app_host.api


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory) -> Iterator[tuple[Services, str, Path]]:
    """A private Azurite, provisioned: work queued there is run only by the hosts the test starts (the
    session's host would pick it up otherwise). Yields services on it, its connection string, a folder."""
    data = tmp_path_factory.mktemp("private-azurite")
    azurite = azurite_launcher.start(data, log_file=data / "azurite.log")
    settings = Settings.from_environ(
        {STORAGE_CONNECTION: azurite.connection_string, "APPBACKUPS_DEVELOPMENT_MODE": "true"}
    )
    services = build_services(settings)
    provision(services.clients)
    try:
        yield services, azurite.connection_string, data
    finally:
        azurite.stop()
