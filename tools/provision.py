"""Create the containers, tables and queues the app uses (Bicep creates them in Azure)."""

from __future__ import annotations

import contextlib

from azure.core.exceptions import ResourceExistsError

from shared.clients import StorageClients
from shared.config import Containers, Queues, Tables


def provision(clients: StorageClients) -> None:
    for container in Containers.ALL:
        with contextlib.suppress(ResourceExistsError):
            clients.blob_service.create_container(container)
    for table in Tables.ALL:
        clients.table_service.create_table_if_not_exists(table)
    for queue in (*Queues.ALL, *(Queues.poison(name) for name in Queues.ALL)):
        with contextlib.suppress(ResourceExistsError):
            clients.queue_service.create_queue(queue)
