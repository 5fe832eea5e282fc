from collections.abc import Iterator

import pytest

from tests.support.apphost import AppHost, start_app_host


@pytest.fixture(scope="session")
def app_host(storage_services, storage_connection_string, tmp_path_factory) -> Iterator[AppHost]:
    """The real function app served by the development host on a free port, against the session's Azurite."""
    host = start_app_host(storage_connection_string, tmp_path_factory.mktemp("apphost") / "devhost.log")
    yield host
    host.stop()


@pytest.fixture(scope="session")
def api(app_host: AppHost) -> str:
    return app_host.api
