"""Create the containers, tables and queues the app uses (Bicep creates them in Azure)."""

from __future__ import annotations

import contextlib

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import CorsRule

from shared.clients import StorageClients
from shared.config import Containers, Queues, Tables

# The Backups page PUTs uploads straight to their SAS URL, from the page's origin; locally any origin
# (Azurite and the development host listen on different ports). In Azure the Bicep allows the app's.
BROWSER_UPLOADS = CorsRule(
    allowed_origins=["*"],
    allowed_methods=["GET", "HEAD", "PUT", "OPTIONS"],
    allowed_headers=["*"],
    exposed_headers=["*"],
    max_age_in_seconds=3600,
)


def provision(clients: StorageClients) -> None:
    clients.blob_service.set_service_properties(cors=[BROWSER_UPLOADS])
    for container in Containers.ALL:
        with contextlib.suppress(ResourceExistsError):
            clients.blob_service.create_container(container)
    for table in Tables.ALL:
        clients.table_service.create_table_if_not_exists(table)
    for queue in (*Queues.ALL, *(Queues.poison(name) for name in Queues.ALL)):
        with contextlib.suppress(ResourceExistsError):
            clients.queue_service.create_queue(queue)
