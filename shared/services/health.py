"""Health: can the service reach its storage and the environments' databases?"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from azure.core.exceptions import AzureError

from shared.adapters.postgres import PostgresGateway
from shared.catalog.environments import EnvironmentCatalog
from shared.clients import StorageClients
from shared.config import Containers, Queues, Tables
from shared.contracts.health import CheckResult, HealthView
from shared.errors import AppError


def _check(name: str, probe: Callable[[], object]) -> CheckResult:
    try:
        probe()
    except (AzureError, AppError, OSError) as error:
        detail = error.detail if isinstance(error, AppError) else type(error).__name__
        return CheckResult(name=name, status="failed", detail=detail)
    return CheckResult(name=name, status="ok")


class HealthService:
    def __init__(self, clients: StorageClients, environments: EnvironmentCatalog, databases: PostgresGateway) -> None:
        self._clients = clients
        self._environments = environments
        self._databases = databases

    def check(self) -> HealthView:
        clients = self._clients
        once = {"retry_total": 0, "timeout": 5}  # a health probe reports; it does not wait out back-offs
        storage = [
            _check(
                "blob",
                lambda: clients.blob_service.get_container_client(Containers.SNAPSHOTS).get_container_properties(
                    **once
                ),
            ),
            _check(
                "table",
                lambda: next(
                    clients.table_service.get_table_client(Tables.ENVIRONMENTS)
                    .list_entities(results_per_page=1, retry_total=0)
                    .by_page()
                ),
            ),
            _check("queue", lambda: clients.queue(Queues.BACKUPS).get_queue_properties(**once)),
        ]
        databases: list[CheckResult] = []
        if all(result.status == "ok" for result in storage):
            environments = self._environments.all()
            with ThreadPoolExecutor(max_workers=min(8, max(1, len(environments)))) as pool:
                databases = list(
                    pool.map(lambda env: _check(env.id, lambda: self._databases.ping(env.database)), environments)
                )
        if any(result.status == "failed" for result in storage):
            status = "unhealthy"
        elif any(result.status == "failed" for result in databases):
            status = "degraded"
        else:
            status = "healthy"
        return HealthView(status=status, storage=storage, databases=databases)
