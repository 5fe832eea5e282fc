"""Wiring: builds the adapters and services once per process and hands them to the triggers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from shared.adapters.postgres import PostgresGateway
from shared.adapters.tables import AzureRowTable, RowTable
from shared.catalog.activity import ActivityCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clients import StorageClients
from shared.clock import Clock, utc_now
from shared.config import Settings, Tables
from shared.services.activity import ActivityLog
from shared.services.environments import EnvironmentService
from shared.services.health import HealthService

TableFactory = Callable[[str], RowTable]


@dataclass
class Services:
    settings: Settings
    clients: StorageClients
    databases: PostgresGateway
    environment_catalog: EnvironmentCatalog
    activity: ActivityLog
    environments: EnvironmentService
    health: HealthService


def build_services(
    settings: Settings,
    *,
    clients: StorageClients | None = None,
    tables: TableFactory | None = None,
    clock: Clock = utc_now,
) -> Services:
    clients = clients or StorageClients(settings.storage)
    if tables is None:

        def tables(name: str) -> RowTable:
            return AzureRowTable(clients.table_service.get_table_client(name))

    def token_provider(scope: str) -> str:
        return clients.credential.get_token(scope).token

    databases = PostgresGateway(settings, token_provider=None if settings.storage.uses_account_key else token_provider)
    environment_catalog = EnvironmentCatalog(tables(Tables.ENVIRONMENTS))
    activity = ActivityLog(ActivityCatalog(tables(Tables.ACTIVITY)), clock)
    return Services(
        settings=settings,
        clients=clients,
        databases=databases,
        environment_catalog=environment_catalog,
        activity=activity,
        environments=EnvironmentService(environment_catalog, activity, clock),
        health=HealthService(clients, environment_catalog, databases),
    )


_services: Services | None = None
_lock = threading.Lock()


def services() -> Services:
    """The process-wide services, built on first use from the app settings."""
    global _services
    with _lock:
        if _services is None:
            _services = build_services(Settings.from_environ())
        return _services


def install_services(replacement: Services | None) -> None:
    """Use ``replacement`` as the process-wide services (tests), or rebuild from settings on next use (None)."""
    global _services
    with _lock:
        _services = replacement
