"""Health: can the service reach its storage and the environments' databases?"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from azure.core.exceptions import AzureError

from shared.adapters.postgres import PostgresGateway
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.snapshots import SnapshotCatalog
from shared.clients import StorageClients
from shared.clock import Clock
from shared.config import Containers, Queues, Tables
from shared.contracts.health import BackupFreshness, CheckResult, HealthView
from shared.domain.environments import EnvironmentState
from shared.errors import AppError


def _check(name: str, probe: Callable[[], object]) -> CheckResult:
    try:
        probe()
    except (AzureError, AppError, OSError) as error:
        detail = error.detail if isinstance(error, AppError) else type(error).__name__
        return CheckResult(name=name, status="failed", detail=detail)
    return CheckResult(name=name, status="ok")


class HealthService:
    def __init__(
        self,
        clients: StorageClients,
        environments: EnvironmentCatalog,
        databases: PostgresGateway,
        snapshots: SnapshotCatalog,
        clock: Clock,
        freshness: timedelta,
    ) -> None:
        self._clients = clients
        self._environments = environments
        self._databases = databases
        self._snapshots = snapshots
        self._clock = clock
        self._freshness = freshness

    def freshness(self) -> list[BackupFreshness]:
        """Per environment that can be backed up: its last successful backup, and whether that is
        older than the freshness window (26 hours: a night's backup plus slack)."""
        now = self._clock()
        results = []
        for environment in self._environments.registered():
            if environment.state in (EnvironmentState.CREATING, EnvironmentState.CREATION_FAILED):
                continue
            latest = self._snapshots.latest_finished(environment.id)
            last = latest.finished_on or latest.created_on if latest else None
            if last is not None and now - last <= self._freshness:
                status = "ok"
            elif last is None and now - environment.created_on <= self._freshness:
                status = "new"
            else:
                status = "stale"
            results.append(BackupFreshness(environment=environment.id, status=status, last_successful_backup=last))
        return results

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
            _check("queue", lambda: clients.queue(Queues.OPERATIONS).get_queue_properties(**once)),
        ]
        databases: list[CheckResult] = []
        if all(result.status == "ok" for result in storage):
            environments = self._environments.registered()  # a deregistered app's database is gone
            with ThreadPoolExecutor(max_workers=min(8, max(1, len(environments)))) as pool:
                databases = list(
                    pool.map(lambda env: _check(env.id, lambda: self._databases.ping(env.database)), environments)
                )
        backups = self.freshness() if all(result.status == "ok" for result in storage) else []
        if any(result.status == "failed" for result in storage):
            status = "unhealthy"
        elif any(result.status == "failed" for result in databases) or any(b.status == "stale" for b in backups):
            status = "degraded"
        else:
            status = "healthy"
        return HealthView(status=status, storage=storage, databases=databases, backups=backups)
