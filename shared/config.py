"""Settings: the one place that reads app settings (environment variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

# The named connection the app's own storage is reached through. Like the Functions host's
# identity-based connections: either `BackupStorage` holds a connection string (Azurite, local), or
# `BackupStorage__blobServiceUri` / `__queueServiceUri` / `__tableServiceUri` (or `__accountName`)
# name the account and `DefaultAzureCredential` signs in (Azure, managed identity).
STORAGE_CONNECTION = "BackupStorage"


class Containers:
    SNAPSHOTS = "snapshots"  # database dumps and manifests, one folder per snapshot
    CONTENT = "content"  # file-document content store, shared per namespace
    ARCHIVES = "archives"  # prepared download archives
    UPLOADS = "uploads"  # archives uploaded by clients, before ingest
    MAINTENANCE = "maintenance"  # pruning's marks between runs

    ALL = (SNAPSHOTS, CONTENT, ARCHIVES, UPLOADS, MAINTENANCE)


class Tables:
    ENVIRONMENTS = "environments"
    SNAPSHOTS = "snapshots"
    ACTIVITY = "activity"
    OPERATIONS = "operations"
    MEMBERS = "members"
    SCHEDULES = "schedules"
    UPLOADS = "uploads"
    WEBHOOKS = "webhooks"  # per namespace: the webhooks that receive its events (URL, events, secret)
    DELIVERIES = "eventdeliveries"  # per webhook (and the Event Grid topic): each event's delivery attempts

    ALL = (ENVIRONMENTS, SNAPSHOTS, ACTIVITY, OPERATIONS, MEMBERS, SCHEDULES, UPLOADS, WEBHOOKS, DELIVERIES)


class Queues:
    OPERATIONS = "operation-work"  # every long job's steps: backups, restores, downloads, uploads
    SCHEDULED = "scheduled-backups"
    EVENTS = "events"  # the outbox: one message per published event, fanned out to its targets
    DELIVERIES = "event-deliveries"  # one message per delivery attempt of an event to a webhook or Event Grid

    ALL = (OPERATIONS, SCHEDULED, EVENTS, DELIVERIES)

    @staticmethod
    def poison(queue: str) -> str:
        return f"{queue}-poison"


# The timers' NCRONTAB schedules are app settings (the triggers name them as %SETTING%); these are
# their defaults, which every launcher (make run, the tests, Bicep) sets. UTC. The monthly timer
# fires on Sundays; the code keeps the first Sunday of each month.
DEFAULT_SCHEDULES = {
    "APPBACKUPS_NIGHTLY_SCHEDULE": "0 0 2 * * *",
    "APPBACKUPS_WEEKLY_SCHEDULE": "0 0 2 * * 0",
    "APPBACKUPS_MONTHLY_SCHEDULE": "0 0 2 * * 0",
    "APPBACKUPS_PRUNE_SCHEDULE": "0 0 4 * * *",
}


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise ValueError(f"app setting {name} must be a whole number, got {raw!r}") from error
    if value < minimum:
        raise ValueError(f"app setting {name} must be at least {minimum}, got {value}")
    return value


def _seconds_list(environ: Mapping[str, str], name: str) -> tuple[int, ...]:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return ()
    try:
        values = tuple(int(item) for item in raw.split(",") if item.strip())
    except ValueError as error:
        raise ValueError(f"app setting {name} must be comma-separated whole seconds, got {raw!r}") from error
    if any(value < 1 or value > 7 * 24 * 3600 for value in values):
        raise ValueError(f"app setting {name}: each delay is 1 second to 7 days (a queue message's limit), got {raw!r}")
    return values


@dataclass(frozen=True)
class StorageConnection:
    """How to reach a storage account: a connection string, or endpoints plus Entra ID."""

    connection_string: str | None = None
    blob_uri: str | None = None
    queue_uri: str | None = None
    table_uri: str | None = None
    client_id: str | None = None

    @classmethod
    def from_settings(cls, name: str, environ: Mapping[str, str]) -> StorageConnection:
        connection_string = environ.get(name)
        if connection_string:
            return cls(connection_string=connection_string)
        account = environ.get(f"{name}__accountName")
        blob_uri = environ.get(f"{name}__blobServiceUri") or environ.get(f"{name}__serviceUri")
        queue_uri = environ.get(f"{name}__queueServiceUri")
        table_uri = environ.get(f"{name}__tableServiceUri")
        if account:
            blob_uri = blob_uri or f"https://{account}.blob.core.windows.net"
            queue_uri = queue_uri or f"https://{account}.queue.core.windows.net"
            table_uri = table_uri or f"https://{account}.table.core.windows.net"
        if not (blob_uri and queue_uri and table_uri):
            raise ValueError(
                f"storage connection {name!r} is not configured: set {name} to a connection string, or "
                f"{name}__accountName (or {name}__blobServiceUri, __queueServiceUri and __tableServiceUri)"
            )
        return cls(
            blob_uri=blob_uri,
            queue_uri=queue_uri,
            table_uri=table_uri,
            client_id=environ.get(f"{name}__clientId"),
        )

    @property
    def uses_account_key(self) -> bool:
        return self.connection_string is not None


@dataclass(frozen=True)
class Settings:
    storage: StorageConnection
    development_mode: bool = False
    easy_auth_enabled: bool = False
    running_in_azure: bool = False
    global_admins: frozenset[str] = field(default_factory=frozenset)
    copy_concurrency: int = 16
    block_size: int = 8 * 1024 * 1024
    database_connect_timeout: int = 10
    postgres_bin_dir: str | None = None
    backup_attempts: int = 3
    operation_attempts: int = 4
    operation_retry_seconds: int = 5
    operation_lease_seconds: int = 120
    operation_stale_minutes: int = 3
    archive_compression: int = 1
    upload_expanded_limit: int = 100 * 1024**3
    upload_url_minutes: int = 120
    nightly_schedule: str = "0 0 2 * * *"
    prune_grace_hours: int = 6
    freshness_hours: int = 26
    crash_points: frozenset[str] = field(default_factory=frozenset)  # fault tests only (shared/faults.py)
    event_grid_endpoint: str | None = None  # the Event Grid topic events are published to, if any
    webhook_retry_seconds: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_timeout_seconds: int = 15
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def setting(self, name: str) -> str | None:
        """An arbitrary app setting, e.g. one that holds an environment's database password."""
        return self.environ.get(name)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        admins = {item.strip() for item in env.get("APPBACKUPS_GLOBAL_ADMINS", "").split(",") if item.strip()}
        return cls(
            storage=StorageConnection.from_settings(STORAGE_CONNECTION, env),
            development_mode=_flag(env.get("APPBACKUPS_DEVELOPMENT_MODE")),
            easy_auth_enabled=_flag(env.get("WEBSITE_AUTH_ENABLED")),  # set by App Service when Easy Auth is on
            running_in_azure=bool(env.get("WEBSITE_INSTANCE_ID")),
            global_admins=frozenset(admins),
            copy_concurrency=_int(env, "APPBACKUPS_COPY_CONCURRENCY", 16),
            block_size=_int(env, "APPBACKUPS_BLOCK_SIZE_MB", 8) * 1024 * 1024,
            database_connect_timeout=_int(env, "APPBACKUPS_DATABASE_CONNECT_TIMEOUT", 10),
            postgres_bin_dir=env.get("APPBACKUPS_POSTGRES_BIN_DIR") or None,
            backup_attempts=_int(env, "APPBACKUPS_BACKUP_ATTEMPTS", 3),
            operation_attempts=_int(env, "APPBACKUPS_OPERATION_ATTEMPTS", 4),
            operation_retry_seconds=_int(env, "APPBACKUPS_OPERATION_RETRY_SECONDS", 5),
            operation_lease_seconds=_int(env, "APPBACKUPS_OPERATION_LEASE_SECONDS", 120, minimum=2),
            operation_stale_minutes=_int(env, "APPBACKUPS_OPERATION_STALE_MINUTES", 3),
            archive_compression=_int(env, "APPBACKUPS_ARCHIVE_COMPRESSION", 1, minimum=0),
            upload_expanded_limit=_int(env, "APPBACKUPS_UPLOAD_MAX_EXPANDED_MB", 100 * 1024) * 1024 * 1024,
            upload_url_minutes=_int(env, "APPBACKUPS_UPLOAD_URL_MINUTES", 120),
            nightly_schedule=env.get("APPBACKUPS_NIGHTLY_SCHEDULE") or DEFAULT_SCHEDULES["APPBACKUPS_NIGHTLY_SCHEDULE"],
            prune_grace_hours=_int(env, "APPBACKUPS_PRUNE_GRACE_HOURS", 6, minimum=0),
            freshness_hours=_int(env, "APPBACKUPS_BACKUP_FRESHNESS_HOURS", 26),
            crash_points=frozenset(
                name.strip() for name in env.get("APPBACKUPS_CRASH_POINTS", "").split(",") if name.strip()
            ),
            event_grid_endpoint=env.get("APPBACKUPS_EVENTGRID_TOPIC_ENDPOINT") or None,
            webhook_retry_seconds=_seconds_list(env, "APPBACKUPS_WEBHOOK_RETRY_SECONDS")
            or (5, 300, 1800, 7200, 18000, 36000, 36000),
            webhook_timeout_seconds=_int(env, "APPBACKUPS_WEBHOOK_TIMEOUT_SECONDS", 15),
            environ=env,
        )
