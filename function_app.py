"""The Azure Functions app: logging set-up, then one Blueprint per concern."""

from __future__ import annotations

import logging

import azure.functions as func

from functions import (
    backups,
    captures,
    docs,
    downloads,
    drills,
    environments,
    events,
    health,
    maintenance,
    namespaces,
    openapi,
    portal,
    restores,
    schedules,
    uploads,
    webhooks,
    workers,
)
from functions.http import ApiFunctionApp
from shared.logs import install_redaction

logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
logging.getLogger("azure").setLevel(logging.WARNING)
logging.getLogger("urllib3").setLevel(logging.WARNING)  # its debug lines would carry request URLs
install_redaction()

app = ApiFunctionApp(http_auth_level=func.AuthLevel.FUNCTION)  # indexed once; the OpenAPI document reads it too

for blueprint in (
    environments.bp,
    backups.bp,
    restores.bp,
    drills.bp,
    downloads.bp,
    uploads.bp,
    namespaces.bp,
    webhooks.bp,
    schedules.bp,
    workers.bp,
    events.bp,
    maintenance.bp,
    captures.bp,
    health.bp,
    openapi.bp,
    portal.bp,
    docs.bp,
):
    app.register_functions(blueprint)
