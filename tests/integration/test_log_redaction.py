"""No password, token, account key or SAS signature reaches a log line during a backup, a restore
and a download — with every logger, the Azure SDK's included, at DEBUG."""

import logging
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from shared.contracts.environments import EnvironmentBody, EnvironmentView
from shared.domain.access import Principal
from shared.domain.downloads import DataType
from shared.domain.operations import OperationStatus
from tests.support.appdata import create_scratch_app
from tests.support.restoring import Harness
from tools.azurite import ACCOUNT_KEY

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")
SECRET = "Sup3r-Secret-Passw0rd"


def test_logs_carry_no_secrets(
    storage_services, storage_connection_string, database_factory, postgres_admin_dsn, caplog
):
    harness = Harness(storage_connection_string, SCRATCH_DB_PASSWORD=SECRET)
    services = harness.services
    source = create_scratch_app(services, database_factory(), postgres_admin_dsn, documents=2)
    target = create_scratch_app(
        services, database_factory(), postgres_admin_dsn, namespace=source.namespace, state="Stopped"
    )
    for app in (source, target):  # the password comes from an app setting (trust auth ignores it here)
        view = EnvironmentView.of(services.environments.get(app.environment_id)).to_json()
        keys = (
            "namespace",
            "appName",
            "displayName",
            "state",
            "database",
            "files",
            "modelVersion",
            "deploymentPackage",
        )
        body = {key: view[key] for key in keys}
        body["database"] = {**body["database"], "passwordSetting": "SCRATCH_DB_PASSWORD"}
        services.environments.put(app.environment_id, EnvironmentBody.model_validate(body).to_registration(), ADA)

    caplog.set_level(logging.DEBUG)
    for name in ("azure", "azure.core.pipeline.policies.http_logging_policy", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)

    backup_id = harness.backup(source.environment_id, ADA)
    restore = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    harness.drain()
    assert services.restores.get(restore.id).status is OperationStatus.FINISHED
    services.downloads.request(source.environment_id, backup_id, DataType.DATABASE_ONLY, ADA)
    harness.drain()
    ready = services.downloads.status(source.environment_id, backup_id, DataType.DATABASE_ONLY)
    with caplog.at_level(logging.WARNING, logger="urllib3"):  # the test's own client would log the URL
        assert requests.get(ready.url, timeout=30).status_code == 200
    _, upload_url = services.uploads.start(source.environment_id, ADA)

    logged = caplog.text
    assert len(caplog.records) > 50  # the SDK did log its requests
    signatures = [parse_qs(urlparse(url).query)["sig"][0] for url in (ready.url, upload_url)]
    signatures += [url.split("sig=")[1].split("&")[0] for url in (ready.url, upload_url)]  # as written in a URL
    for secret in (SECRET, ACCOUNT_KEY, *signatures):
        assert secret not in logged
    assert "Authorization" not in logged or "REDACTED" in logged
