"""Wiring: builds the adapters and services once per process and hands them to the triggers."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.access.authorization import Authorization
from shared.access.service import AccessService
from shared.adapters.blobs import AzureBlobStore, BlobFactory, BlobStore
from shared.adapters.dns import system_resolver
from shared.adapters.eventgrid import AzureEventGridSink, EventSink
from shared.adapters.pointintime import ArchivePruned, PointInTimeSource, RecoveryWindow, TemporaryInstance
from shared.adapters.pointintime.barman import BarmanCloudArchive
from shared.adapters.postgres import Databases, PostgresDatabases
from shared.adapters.queues import AzureWorkQueue, WorkQueue
from shared.adapters.queuestats import AzureQueueStats
from shared.adapters.secrets import SecretStore, UnconfiguredSecretStore
from shared.adapters.secrets.keyvault import KeyVaultSecretStore
from shared.adapters.secrets.local import CONTAINER as LOCAL_SECRETS_CONTAINER
from shared.adapters.secrets.local import LocalSecretStore
from shared.adapters.secrets.memory import MemorySecretStore
from shared.adapters.stores import Stores
from shared.adapters.tables import AzureRowTable, RowTable
from shared.adapters.webhooks import PinnedTransport, WebhookTransport
from shared.backups.past import PastFiles
from shared.backups.pointintime import PastReader
from shared.backups.service import BackupService
from shared.backups.slots import ServerSlots
from shared.backups.steps import BackupSettings, BackupSteps
from shared.captures.service import FileCaptures, longest_interval
from shared.catalog.activity import ActivityCatalog, ActivityLog
from shared.catalog.backups import BackupCatalog
from shared.catalog.captures import CaptureCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.events import DeliveryCatalog, WebhookCatalog
from shared.catalog.members import MemberCatalog
from shared.catalog.nights import NightCatalog
from shared.catalog.operations import OperationCatalog
from shared.catalog.uploads import UploadCatalog
from shared.clients import FlexibleServerClients, StorageClients, event_grid_publisher, key_vault_secrets
from shared.clock import Clock, utc_now
from shared.config import Containers, Queues, Settings, Tables
from shared.domain.addresses import Resolver
from shared.domain.environments import DatabaseConnection, Environment
from shared.downloads.service import DownloadService
from shared.downloads.steps import DownloadSteps
from shared.drills.service import DrillService
from shared.drills.steps import DrillSteps
from shared.environments.service import EnvironmentService
from shared.events.deliveries import DeliveryService, DeliverySettings
from shared.events.publishing import EventPublisher
from shared.events.secrets import WebhookSecrets
from shared.events.webhooks import WebhookService
from shared.faults import arm_crash_points
from shared.health.service import HealthService
from shared.operations.engine import EngineSettings, OperationDefinition, OperationEngine
from shared.operations.reaper import Reaper
from shared.pruning.service import PruneService
from shared.restores.preflight import Preflight
from shared.restores.service import RestoreService
from shared.restores.steps import RestoreSteps
from shared.schedules.nights import NightsView
from shared.schedules.service import SchedulerService
from shared.telemetry.export import configure_export
from shared.telemetry.gauges import QueueGauges, RecoveryPoints, StalledOperations, StorageUsage, register_gauges
from shared.telemetry.telemetry import Telemetry, default_telemetry
from shared.uploads.service import UploadService
from shared.uploads.steps import UploadSteps

if TYPE_CHECKING:
    from shared.adapters.pointintime.flexible import FlexibleServerManagement, FlexibleServerPointInTime

TableFactory = Callable[[str], RowTable]
QueueFactory = Callable[[str], WorkQueue]


@dataclass
class Services:
    settings: Settings
    clients: StorageClients
    databases: Databases
    environment_catalog: EnvironmentCatalog
    backup_catalog: BackupCatalog
    stores: Stores
    activity: ActivityLog
    environments: EnvironmentService
    access: AccessService
    authorization: Authorization
    backups: BackupService
    backup_steps: BackupSteps
    past: PastReader  # the recovery window of environments with point-in-time recovery
    operations: OperationEngine
    restore_steps: RestoreSteps
    restores: RestoreService
    drill_steps: DrillSteps
    drills: DrillService
    downloads: DownloadService
    uploads: UploadService
    scheduler: SchedulerService
    nights: NightsView  # per environment, where its scheduled backup of a night stands
    pruning: PruneService
    captures: FileCaptures  # file documents captured for point-in-time recovery
    reaper: Reaper
    health: HealthService
    events: EventPublisher
    deliveries: DeliveryService
    webhooks: WebhookService
    telemetry: Telemetry
    storage_usage: StorageUsage  # measured by the prune timer after each prune
    secrets: SecretStore  # the webhooks' signing secrets: Key Vault, or the local store of the development host


class ArchiveFromSettings:
    """The PointInTimeSource of the app settings: barman-cloud's archive in the backup storage account
    (docs/decisions/0009), built on first use, so that a process whose environments never read the past
    pays nothing for it."""

    def __init__(self, settings: Settings, clients: StorageClients) -> None:
        self._settings = settings
        self._clients = clients
        self._lock = threading.Lock()
        self._archive: BarmanCloudArchive | None = None

    @property
    def archive(self) -> BarmanCloudArchive:
        with self._lock:
            if self._archive is None:
                settings = self._settings
                connection_string = settings.storage.connection_string
                self._archive = BarmanCloudArchive(
                    self._clients.blob_service.get_container_client(settings.point_in_time_container),
                    settings.point_in_time_scratch or os.path.join(tempfile.gettempdir(), "appbackups-pointintime"),
                    # The barman tools sign in as the app does: the shared key of a connection string (Azurite),
                    # else the managed identity.
                    connection_string=connection_string,
                    credential=None if connection_string else "managed-identity",
                    prefix=settings.point_in_time_prefix,
                    barman_bin_dir=settings.barman_bin_dir,
                )
            return self._archive

    def window(self, server: str) -> RecoveryWindow:
        return self.archive.window(server)

    def as_of(
        self,
        server: str,
        instant: datetime,
        database: str,
        *,
        on_started: Callable[[TemporaryInstance], None] = lambda instance: None,
        stop: threading.Event | None = None,
        login: DatabaseConnection | None = None,
    ) -> AbstractContextManager[DatabaseConnection]:
        return self.archive.as_of(server, instant, database, on_started=on_started, stop=stop, login=login)

    def release(self, instance: TemporaryInstance) -> None:
        self.archive.release(instance)

    def prune(self, server: str, keep_from: datetime) -> ArchivePruned:
        return self.archive.prune(server, keep_from)


class PointInTimeByServer:
    """Each server's past from where it is kept: a flexible server's from Azure's own point-in-time restore
    (``flexible``, docs/decisions/0017), any other's from the barman-cloud archive (``archive``). A temporary
    instance goes back to whichever made it: a temporary server to ``flexible``."""

    def __init__(self, flexible: FlexibleServerPointInTime, archive: PointInTimeSource) -> None:
        self.flexible = flexible
        self.archive = archive

    def _source(self, server: str) -> PointInTimeSource:
        return self.flexible if self.flexible.serves(server) else self.archive

    def window(self, server: str) -> RecoveryWindow:
        return self._source(server).window(server)

    def as_of(
        self,
        server: str,
        instant: datetime,
        database: str,
        *,
        on_started: Callable[[TemporaryInstance], None] = lambda instance: None,
        stop: threading.Event | None = None,
        login: DatabaseConnection | None = None,
    ) -> AbstractContextManager[DatabaseConnection]:
        source = self._source(server)
        return source.as_of(server, instant, database, on_started=on_started, stop=stop, login=login)

    def release(self, instance: TemporaryInstance) -> None:
        (self.flexible if instance.server_resource_id is not None else self.archive).release(instance)

    def prune(self, server: str, keep_from: datetime) -> ArchivePruned:
        return self._source(server).prune(server, keep_from)


def point_in_time_from_settings(
    settings: Settings, clients: StorageClients, management: Callable[[str], FlexibleServerManagement] | None = None
) -> PointInTimeSource:
    """The archive of the app settings, and the flexible servers of APPBACKUPS_FLEXIBLE_SERVERS when there are any
    (their management clients from ``management``, by default the managed identity's)."""
    archive = ArchiveFromSettings(settings, clients)
    if not settings.flexible_servers:
        return archive
    from shared.adapters.pointintime.flexible import FlexibleServerPointInTime  # the SDK, only when it is used

    flexible = FlexibleServerPointInTime(
        settings.flexible_servers,
        management or FlexibleServerClients(lambda: clients.credential),
        restore_lag=timedelta(seconds=settings.flexible_restore_lag_seconds),
    )
    return PointInTimeByServer(flexible, archive)


def secret_store(settings: Settings, clients: StorageClients, clock: Clock, *, in_memory: bool) -> SecretStore:
    """The webhooks' signing secrets: the Key Vault of the settings; without one, in Azure none (refused: they
    would otherwise land in the storage account), on the development host a blob container of its storage
    (docs/decisions/0014), and the twin when the storage itself is in memory."""
    if settings.key_vault_url:
        return KeyVaultSecretStore(key_vault_secrets(settings.key_vault_url, clients.credential), clock)
    if settings.running_in_azure:
        return UnconfiguredSecretStore(
            "APPBACKUPS_KEY_VAULT_URL is not set: in Azure the webhooks' signing secrets are kept in Key Vault only."
        )
    if in_memory:
        return MemorySecretStore(clock)
    return LocalSecretStore(clients.blob_service.get_container_client(LOCAL_SECRETS_CONTAINER), clock)


def build_services(
    settings: Settings,
    *,
    clients: StorageClients | None = None,
    tables: TableFactory | None = None,
    queues: QueueFactory | None = None,
    blobs: BlobFactory | None = None,
    databases: Databases | None = None,
    clock: Clock = utc_now,
    event_grid: EventSink | None = None,
    webhook_transport: WebhookTransport | None = None,
    resolver: Resolver | None = None,
    point_in_time: PointInTimeSource | None = None,
    past_files: PastFiles | None = None,
    telemetry: Telemetry | None = None,  # spans, metrics and gauges; without it the global providers, and no gauges
    secrets: SecretStore | None = None,
) -> Services:
    """``event_grid``, ``webhook_transport`` and ``resolver`` replace the real ones (tests); without
    ``event_grid``, the Event Grid topic of the settings is used when one is configured. ``point_in_time`` is
    the archive backups of the past and restores to a point in time read; without it, the barman-cloud archive
    of the settings (APPBACKUPS_POINT_IN_TIME_*) in the backup storage account and Azure's point-in-time restore
    of the flexible servers of APPBACKUPS_FLEXIBLE_SERVERS, unless ``blobs`` replaces the
    storage (then none: environments answer that point-in-time recovery is not set up). ``past_files`` is the
    captured file documents they take. ``secrets`` is where the webhooks' signing secrets are kept; without it,
    the Key Vault of the settings (APPBACKUPS_KEY_VAULT_URL), else the local store of the development host (a
    blob container of the storage account; refused in Azure), or the in-memory twin when ``blobs`` replaces the
    storage."""
    arm_crash_points(settings.crash_points)
    clients = clients or StorageClients(settings.storage)
    if secrets is None:
        secrets = secret_store(settings, clients, clock, in_memory=blobs is not None)
    if point_in_time is None and blobs is None:
        point_in_time = point_in_time_from_settings(settings, clients)
    if tables is None:

        def tables(name: str) -> RowTable:
            return AzureRowTable(clients.table_service.get_table_client(name))

    queues_are_storage = queues is None
    if queues is None:

        def queues(name: str) -> WorkQueue:
            return AzureWorkQueue(clients.queue(name))

    if blobs is None:

        def blobs(account_url: str | None, container: str) -> BlobStore:
            return AzureBlobStore(clients.blob_service_for(account_url), container)

    def file_store(environment: Environment) -> BlobStore:
        return blobs(environment.files.account_url, environment.files.container)

    def token_provider(scope: str) -> str:
        return clients.credential.get_token(scope).token

    databases = databases or PostgresDatabases(
        settings.setting,
        connect_timeout=settings.database_connect_timeout,
        bin_dir=settings.postgres_bin_dir,
        token_provider=None if settings.storage.uses_account_key else token_provider,
    )
    environment_catalog = EnvironmentCatalog(tables(Tables.ENVIRONMENTS))
    backup_catalog = BackupCatalog(tables(Tables.BACKUPS))
    activity = ActivityLog(ActivityCatalog(tables(Tables.ACTIVITY)), clock)
    stores = Stores(
        backups=blobs(None, Containers.BACKUPS),
        content=blobs(None, Containers.CONTENT),
        archives=blobs(None, Containers.ARCHIVES),
        uploads=blobs(None, Containers.UPLOADS),
        maintenance=blobs(None, Containers.MAINTENANCE),
        file_store=file_store,
    )
    backup_settings = BackupSettings(
        max_attempts=settings.backup_attempts,
        copy_concurrency=settings.copy_concurrency,
        block_size=settings.block_size,
        chunked_dumps=settings.chunked_dumps,
        file_reconciliation_days=settings.file_reconciliation_days,
    )
    telemetry_in_use = telemetry or default_telemetry()
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
            progress_interval=timedelta(seconds=settings.progress_interval_seconds),
        ),
        telemetry_in_use,
    )
    past = PastReader(point_in_time, environment_catalog, clock)
    backups = BackupService(backup_catalog, environment_catalog, activity, operations, stores.backups, clock, past)
    events = EventPublisher(
        queues(Queues.EVENTS), backup_catalog, environment_catalog, clock, timedelta(hours=settings.freshness_hours)
    )

    def register(definition: OperationDefinition) -> None:
        """Every job announces its end: its event is published once its outcome is checkpointed."""
        operations.register(replace(definition, on_ended=events.announce))

    night_catalog = NightCatalog(tables(Tables.SCHEDULES))
    capture_catalog = CaptureCatalog(tables(Tables.CAPTURES))
    captures = FileCaptures(
        capture_catalog,
        environment_catalog,
        databases,
        stores.content,
        file_store,
        clock,
        interval=longest_interval(settings.capture_schedule, clock()),
        copy_concurrency=settings.copy_concurrency,
    )
    pruning = PruneService(
        environment_catalog,
        backup_catalog,
        night_catalog,
        activity,
        stores.backups,
        stores.content,
        stores.maintenance,
        clock,
        timedelta(hours=settings.prune_grace_hours),
        on_forgotten=events.backup_expired,
        captures=capture_catalog,
        point_in_time=point_in_time,
    )
    backup_steps = BackupSteps(
        backup_catalog,
        environment_catalog,
        activity,
        stores,
        databases,
        backup_settings,
        clock,
        last_sweep=pruning.last_sweep,
        point_in_time=point_in_time,
        past_files=past_files or captures.files_as_of,
        slots=ServerSlots(
            tables(Tables.SCHEDULES), operation_catalog.find, settings.backups_per_database_server, clock
        ),
    )
    register(backup_steps.definition())
    restore_steps = RestoreSteps(
        environments=environment_catalog,
        backup_catalog=backup_catalog,
        backups=backups,
        engine=operations,
        activity=activity,
        backup_store=stores.backups,
        content_store=stores.content,
        file_store=file_store,
        databases=databases,
        clock=clock,
        copy_concurrency=settings.copy_concurrency,
    )
    register(restore_steps.definition())
    drill_steps = DrillSteps(
        environments=environment_catalog,
        backup_catalog=backup_catalog,
        activity=activity,
        backup_store=stores.backups,
        content_store=stores.content,
        databases=databases,
        clock=clock,
        read_concurrency=settings.copy_concurrency,
        engine=operations,
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
    register(drill_steps.definition())
    download_steps = DownloadSteps(
        backup_catalog=backup_catalog,
        activity=activity,
        backup_store=stores.backups,
        content_store=stores.content,
        archive_store=stores.archives,
        clock=clock,
        block_size=settings.block_size,
        compress_level=settings.archive_compression,
    )
    register(download_steps.definition())
    register(
        UploadSteps(
            backup_catalog=backup_catalog,
            environments=environment_catalog,
            activity=activity,
            backup_store=stores.backups,
            content_store=stores.content,
            upload_store=stores.uploads,
            clock=clock,
            block_size=settings.block_size,
            expanded_limit=settings.upload_expanded_limit,
            copy_concurrency=settings.copy_concurrency,
            databases=databases,
        ).definition()
    )
    if event_grid is None and settings.event_grid_endpoint:
        event_grid = AzureEventGridSink(event_grid_publisher(settings.event_grid_endpoint, clients.credential))
    resolver = resolver or system_resolver
    webhook_catalog = WebhookCatalog(tables(Tables.WEBHOOKS))
    delivery_catalog = DeliveryCatalog(tables(Tables.DELIVERIES))
    webhook_secrets = WebhookSecrets(
        secrets, webhook_catalog, clock, timedelta(hours=settings.webhook_secret_grace_hours)
    )
    deliveries = DeliveryService(
        webhook_catalog,
        delivery_catalog,
        queues(Queues.DELIVERIES),
        clock,
        DeliverySettings(
            retry_delays=tuple(timedelta(seconds=seconds) for seconds in settings.webhook_retry_seconds),
            timeout_seconds=float(settings.webhook_timeout_seconds),
            development_mode=settings.development_mode,
        ),
        webhook_transport or PinnedTransport(),
        resolver,
        webhook_secrets,
        event_grid,
    )
    access = AccessService(
        MemberCatalog(tables(Tables.MEMBERS)), settings.global_admins, settings.development_mode, clock
    )
    if telemetry is not None:
        register_gauges(
            telemetry,
            recovery_points=RecoveryPoints(
                environment_catalog, backup_catalog, lambda environment: past.window_of(environment).latest, clock
            ),
            stalled=StalledOperations(operation_catalog, clock, operations.settings.stall_bound),
            queues=QueueGauges(
                {
                    name: AzureQueueStats(clients.queue(name))
                    for queue in Queues.ALL
                    for name in (queue, Queues.poison(queue))
                },
                clock,
            )
            if queues_are_storage
            else None,
        )
    return Services(
        settings=settings,
        clients=clients,
        databases=databases,
        environment_catalog=environment_catalog,
        backup_catalog=backup_catalog,
        stores=stores,
        activity=activity,
        environments=EnvironmentService(environment_catalog, activity, clock),
        access=access,
        authorization=Authorization(access, environment_catalog, operation_catalog),
        backups=backups,
        backup_steps=backup_steps,
        past=past,
        operations=operations,
        restore_steps=restore_steps,
        restores=RestoreService(
            operations,
            environment_catalog,
            backup_catalog,
            backups,
            clock,
            Preflight(
                environments=environment_catalog,
                backups=backups,
                databases=databases,
                backup_store=stores.backups,
                content_store=stores.content,
                file_store=file_store,
                past=past,
            ),
        ),
        drill_steps=drill_steps,
        drills=DrillService(operations, environment_catalog, backup_catalog, backups, clock, past),
        downloads=DownloadService(operations, operation_catalog, backup_catalog, backups, stores.archives, clock),
        uploads=UploadService(
            operations,
            UploadCatalog(tables(Tables.UPLOADS)),
            environment_catalog,
            backup_catalog,
            stores.uploads,
            clock,
            timedelta(minutes=settings.upload_url_minutes),
        ),
        scheduler=SchedulerService(
            environment_catalog,
            night_catalog,
            backup_catalog,
            backups,
            queues(Queues.SCHEDULED),
            clock,
            settings.nightly_schedule,
            spread=timedelta(minutes=settings.nightly_spread_minutes),
        ),
        nights=NightsView(environment_catalog, night_catalog, backup_catalog, operation_catalog.find),
        pruning=pruning,
        captures=captures,
        reaper=Reaper(
            operations, operation_catalog, backup_catalog, clock, timedelta(minutes=settings.operation_stale_minutes)
        ),
        health=HealthService(
            clients.health_probes(Containers.BACKUPS, Tables.ENVIRONMENTS, Queues.OPERATIONS),
            environment_catalog,
            databases,
            backup_catalog,
            clock,
            timedelta(hours=settings.freshness_hours),
        ),
        events=events,
        deliveries=deliveries,
        telemetry=telemetry_in_use,
        storage_usage=StorageUsage(
            environment_catalog, {"backups": stores.backups, "content": stores.content}, telemetry_in_use
        ),
        webhooks=WebhookService(
            webhook_catalog, delivery_catalog, clock, resolver, settings.development_mode, webhook_secrets
        ),
        secrets=secrets,
    )


_services: Services | None = None
_lock = threading.Lock()


def services() -> Services:
    """The process-wide services, built on first use from the app settings."""
    global _services
    with _lock:
        if _services is None:
            settings = Settings.from_environ()
            configure_export(settings)  # once per process: where the telemetry goes
            _services = build_services(settings, telemetry=Telemetry())
        return _services


def install_services(replacement: Services | None) -> None:
    """Use ``replacement`` as the process-wide services (tests), or rebuild from settings on next use (None)."""
    global _services
    with _lock:
        _services = replacement
