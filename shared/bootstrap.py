"""Wiring: builds the adapters and services once per process and hands them to the triggers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from shared.access.service import AccessService
from shared.adapters.blobs import BlobStore
from shared.adapters.postgres import Databases, PostgresDatabases
from shared.adapters.queues import AzureWorkQueue, WorkQueue
from shared.adapters.stores import Stores
from shared.adapters.tables import AzureRowTable, RowTable
from shared.backups.service import BackupService
from shared.backups.steps import BackupSettings, BackupSteps
from shared.catalog.activity import ActivityCatalog, ActivityLog
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.members import MemberCatalog
from shared.catalog.nights import NightCatalog
from shared.catalog.operations import OperationCatalog
from shared.catalog.snapshots import SnapshotCatalog
from shared.catalog.uploads import UploadCatalog
from shared.clients import StorageClients
from shared.clock import Clock, utc_now
from shared.config import Containers, Queues, Settings, Tables
from shared.domain.environments import DatabaseConnection, Environment
from shared.downloads.service import DownloadService
from shared.downloads.steps import DownloadSteps
from shared.drills.service import DrillService
from shared.drills.steps import DrillSteps
from shared.environments.service import EnvironmentService
from shared.faults import arm_crash_points
from shared.health.service import HealthService
from shared.operations.engine import EngineSettings, OperationEngine
from shared.operations.reaper import Reaper
from shared.pruning.service import PruneService
from shared.restores.preflight import Preflight
from shared.restores.service import RestoreService
from shared.restores.steps import RestoreSteps
from shared.schedules.service import SchedulerService
from shared.uploads.service import UploadService
from shared.uploads.steps import UploadSteps

TableFactory = Callable[[str], RowTable]
QueueFactory = Callable[[str], WorkQueue]


@dataclass
class Services:
    settings: Settings
    clients: StorageClients
    databases: Databases
    environment_catalog: EnvironmentCatalog
    snapshot_catalog: SnapshotCatalog
    stores: Stores
    activity: ActivityLog
    environments: EnvironmentService
    access: AccessService
    backups: BackupService
    backup_steps: BackupSteps
    operations: OperationEngine
    restore_steps: RestoreSteps
    restores: RestoreService
    drill_steps: DrillSteps
    drills: DrillService
    downloads: DownloadService
    uploads: UploadService
    scheduler: SchedulerService
    pruning: PruneService
    reaper: Reaper
    health: HealthService


def build_services(
    settings: Settings,
    *,
    clients: StorageClients | None = None,
    tables: TableFactory | None = None,
    queues: QueueFactory | None = None,
    clock: Clock = utc_now,
    databases: Databases | None = None,
) -> Services:
    arm_crash_points(settings.crash_points)
    clients = clients or StorageClients(settings.storage)
    if tables is None:

        def tables(name: str) -> RowTable:
            return AzureRowTable(clients.table_service.get_table_client(name))

    if queues is None:

        def queues(name: str) -> WorkQueue:
            return AzureWorkQueue(clients.queue(name))

    def file_store(environment: Environment) -> BlobStore:
        return BlobStore(clients.blob_service_for(environment.files.account_url), environment.files.container)

    def token_provider(scope: str) -> str:
        return clients.credential.get_token(scope).token

    databases = databases or PostgresDatabases(
        settings.setting,
        connect_timeout=settings.database_connect_timeout,
        bin_dir=settings.postgres_bin_dir,
        token_provider=None if settings.storage.uses_account_key else token_provider,
    )
    environment_catalog = EnvironmentCatalog(tables(Tables.ENVIRONMENTS))
    snapshot_catalog = SnapshotCatalog(tables(Tables.SNAPSHOTS))
    activity = ActivityLog(ActivityCatalog(tables(Tables.ACTIVITY)), clock)
    stores = Stores(
        snapshots=BlobStore(clients.blob_service, Containers.SNAPSHOTS),
        content=BlobStore(clients.blob_service, Containers.CONTENT),
        archives=BlobStore(clients.blob_service, Containers.ARCHIVES),
        uploads=BlobStore(clients.blob_service, Containers.UPLOADS),
        maintenance=BlobStore(clients.blob_service, Containers.MAINTENANCE),
        file_store=file_store,
    )
    backup_settings = BackupSettings(
        max_attempts=settings.backup_attempts,
        copy_concurrency=settings.copy_concurrency,
        block_size=settings.block_size,
    )
    lease = timedelta(seconds=settings.operation_lease_seconds)
    operation_catalog = OperationCatalog(tables(Tables.OPERATIONS))
    operations = OperationEngine(
        operation_catalog,
        queues(Queues.OPERATIONS),
        clock,
        EngineSettings(
            max_attempts=settings.operation_attempts,
            retry_base=timedelta(seconds=settings.operation_retry_seconds),
            lease=lease,
            watchdog_slack=max(timedelta(seconds=1), lease / 24),
            stale_after=timedelta(minutes=settings.operation_stale_minutes),
        ),
    )
    backups = BackupService(snapshot_catalog, environment_catalog, activity, operations, stores.snapshots, clock)
    night_catalog = NightCatalog(tables(Tables.SCHEDULES))
    pruning = PruneService(
        environment_catalog,
        snapshot_catalog,
        night_catalog,
        activity,
        stores.snapshots,
        stores.content,
        stores.maintenance,
        clock,
        timedelta(hours=settings.prune_grace_hours),
    )
    backup_steps = BackupSteps(
        snapshot_catalog,
        environment_catalog,
        activity,
        stores,
        databases,
        backup_settings,
        clock,
        last_sweep=pruning.last_sweep,
    )
    operations.register(backup_steps.definition())
    restore_steps = RestoreSteps(
        environments=environment_catalog,
        snapshots=snapshot_catalog,
        backups=backups,
        engine=operations,
        activity=activity,
        snapshot_store=stores.snapshots,
        content_store=stores.content,
        file_store=file_store,
        databases=databases,
        clock=clock,
        copy_concurrency=settings.copy_concurrency,
    )
    operations.register(restore_steps.definition())
    drill_steps = DrillSteps(
        environments=environment_catalog,
        snapshots=snapshot_catalog,
        activity=activity,
        snapshot_store=stores.snapshots,
        content_store=stores.content,
        databases=databases,
        clock=clock,
        read_concurrency=settings.copy_concurrency,
        verification_servers={
            namespace: DatabaseConnection(
                host=server.host,
                port=server.port,
                database=server.database,
                user=server.user,
                password_setting=server.passwordSetting,
                entra_auth=server.entraAuth,
                ssl_mode=server.sslMode,
            )
            for namespace, server in (settings.verification_servers or {}).items()
        },
    )
    operations.register(drill_steps.definition())
    download_steps = DownloadSteps(
        snapshots=snapshot_catalog,
        activity=activity,
        snapshot_store=stores.snapshots,
        content_store=stores.content,
        archive_store=stores.archives,
        clock=clock,
        block_size=settings.block_size,
        compress_level=settings.archive_compression,
    )
    operations.register(download_steps.definition())
    operations.register(
        UploadSteps(
            snapshots=snapshot_catalog,
            activity=activity,
            snapshot_store=stores.snapshots,
            content_store=stores.content,
            upload_store=stores.uploads,
            clock=clock,
            block_size=settings.block_size,
            expanded_limit=settings.upload_expanded_limit,
            copy_concurrency=settings.copy_concurrency,
            databases=databases,
        ).definition()
    )
    return Services(
        settings=settings,
        clients=clients,
        databases=databases,
        environment_catalog=environment_catalog,
        snapshot_catalog=snapshot_catalog,
        stores=stores,
        activity=activity,
        environments=EnvironmentService(environment_catalog, activity, clock),
        access=AccessService(
            MemberCatalog(tables(Tables.MEMBERS)), settings.global_admins, settings.development_mode, clock
        ),
        backups=backups,
        backup_steps=backup_steps,
        operations=operations,
        restore_steps=restore_steps,
        restores=RestoreService(
            operations,
            environment_catalog,
            snapshot_catalog,
            backups,
            clock,
            Preflight(
                environments=environment_catalog,
                backups=backups,
                databases=databases,
                snapshot_store=stores.snapshots,
                file_store=file_store,
            ),
        ),
        drill_steps=drill_steps,
        drills=DrillService(operations, environment_catalog, snapshot_catalog, backups, clock),
        downloads=DownloadService(operations, operation_catalog, snapshot_catalog, backups, stores.archives, clock),
        uploads=UploadService(
            operations,
            UploadCatalog(tables(Tables.UPLOADS)),
            environment_catalog,
            snapshot_catalog,
            stores.uploads,
            clock,
            timedelta(minutes=settings.upload_url_minutes),
        ),
        scheduler=SchedulerService(
            environment_catalog,
            night_catalog,
            snapshot_catalog,
            backups,
            queues(Queues.SCHEDULED),
            clock,
            settings.nightly_schedule,
        ),
        pruning=pruning,
        reaper=Reaper(
            operations, operation_catalog, snapshot_catalog, clock, timedelta(minutes=settings.operation_stale_minutes)
        ),
        health=HealthService(
            clients.health_probes(Containers.SNAPSHOTS, Tables.ENVIRONMENTS, Queues.OPERATIONS),
            environment_catalog,
            databases,
            snapshot_catalog,
            clock,
            timedelta(hours=settings.freshness_hours),
        ),
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
