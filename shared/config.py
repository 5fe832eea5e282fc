"""Settings: the one place that reads app settings (environment variables)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

# The named connection the app's own storage is reached through. Like the Functions host's
# identity-based connections: either `BackupStorage` holds a connection string (Azurite, local), or
# `BackupStorage__blobServiceUri` / `__queueServiceUri` / `__tableServiceUri` (or `__accountName`)
# name the account and `DefaultAzureCredential` signs in (Azure, managed identity).
STORAGE_CONNECTION = "BackupStorage"


class Containers:
    BACKUPS = "snapshots"  # stored name kept (docs/decisions/0001): dumps and manifests, one folder per backup
    CONTENT = "content"  # file-document content store, shared per namespace
    ARCHIVES = "archives"  # prepared download archives
    UPLOADS = "uploads"  # archives uploaded by clients, before ingest
    MAINTENANCE = "maintenance"  # pruning's marks between runs
    WAL = "wal"  # point-in-time recovery: barman-cloud's base backups and archived WAL (docs/decisions/0009)

    ALL = (BACKUPS, CONTENT, ARCHIVES, UPLOADS, MAINTENANCE, WAL)


class Tables:
    ENVIRONMENTS = "environments"
    BACKUPS = "snapshots"
    ACTIVITY = "activity"
    OPERATIONS = "operations"
    MEMBERS = "members"
    SCHEDULES = "schedules"
    UPLOADS = "uploads"
    WEBHOOKS = "webhooks"  # per namespace: the webhooks that receive its events (URL, events, secret)
    DELIVERIES = "eventdeliveries"  # per webhook (and the Event Grid topic): each event's delivery attempts
    CAPTURES = "captures"  # per environment with point-in-time recovery: each file document captured, and when

    ALL = (ENVIRONMENTS, BACKUPS, ACTIVITY, OPERATIONS, MEMBERS, SCHEDULES, UPLOADS, WEBHOOKS, DELIVERIES, CAPTURES)


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
NIGHTLY_SCHEDULE = "APPBACKUPS_NIGHTLY_SCHEDULE"
CAPTURE_SCHEDULE = "APPBACKUPS_CAPTURE_SCHEDULE"
DEFAULT_SCHEDULES = {
    NIGHTLY_SCHEDULE: "0 0 2 * * *",
    "APPBACKUPS_WEEKLY_SCHEDULE": "0 0 2 * * 0",
    "APPBACKUPS_MONTHLY_SCHEDULE": "0 0 2 * * 0",
    "APPBACKUPS_PRUNE_SCHEDULE": "0 0 4 * * *",
    "APPBACKUPS_DRILL_SCHEDULE": "0 0 5 * * 0",
    CAPTURE_SCHEDULE: "0 * * * * *",
}
VERIFICATION_SERVERS = "APPBACKUPS_VERIFICATION_SERVERS"


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


# -- app settings ------------------------------------------------------------------------------------
# Each app setting the core reads is one field of Settings below: its name (the field's alias), its
# default, its bounds and what it means, stated once. The README's "Configuration" table is generated
# from them (python -m tools.settings_table). Code reads a setting as a Settings attribute; bootstrap
# hands the values on to the engine and the steps.


def _whole_number(value: object) -> object:
    """Whole numbers as int() reads them (" 16 ", "1_000"); "16.0" or "many" are refused."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise PydanticCustomError(
                "whole_number", "must be a whole number, got {raw}", {"raw": repr(value)}
            ) from None
    return value


def _flag(value: object) -> object:
    """1, true, yes or on (any case) is true; anything else is false, as before: a flag never fails."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return value


def _present(value: object) -> object:
    """A setting whose presence is what counts (WEBSITE_INSTANCE_ID holds an instance id)."""
    if isinstance(value, str):
        return bool(value.strip())
    return value


def _names(value: object) -> object:
    """A comma-separated list of names, blanks dropped."""
    if isinstance(value, str):
        return frozenset(item.strip() for item in value.split(",") if item.strip())
    return value


_MAX_QUEUE_DELAY = 7 * 24 * 3600  # a queue message's visibility delay: at most 7 days


def _seconds_list(value: object) -> object:
    """Comma-separated whole seconds, each 1 second to 7 days (a queue message's limit)."""
    if isinstance(value, str):
        try:
            values = tuple(int(item) for item in value.split(",") if item.strip())
        except ValueError:
            raise PydanticCustomError(
                "seconds_list", "must be comma-separated whole seconds, got {raw}", {"raw": repr(value)}
            ) from None
        if not values or any(item < 1 or item > _MAX_QUEUE_DELAY for item in values):
            raise PydanticCustomError(
                "seconds_list",
                "each delay is 1 second to 7 days (a queue message's limit), got {raw}",
                {"raw": repr(value)},
            )
        return values
    return value


Count = Annotated[int, BeforeValidator(_whole_number)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Names = Annotated[frozenset[str], NoDecode, BeforeValidator(_names)]
Delays = Annotated[tuple[int, ...], NoDecode, BeforeValidator(_seconds_list)]
_MB = 1024 * 1024


class VerificationServer(BaseModel):
    """A PostgreSQL server where a namespace's restore drills make their scratch databases, for environments
    whose own server refuses CREATE DATABASE. ``database`` is where the service connects to create them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str
    port: int = 5432
    user: str
    database: str = "postgres"
    passwordSetting: str | None = None  # noqa: N815 - as the registration's database connection names it
    entraAuth: bool = False  # noqa: N815
    sslMode: str = "prefer"  # noqa: N815


def _verification_servers(value: object) -> object:
    """JSON: {"namespace": {"host": …, "port": …, "user": …, "database": …, "passwordSetting": …}}."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else None
        except ValueError:
            raise PydanticCustomError(
                "json_object", "must be a JSON object of namespace to server, got {raw}", {"raw": repr(value[:40])}
            ) from None
    return value


FLEXIBLE_SERVERS = "APPBACKUPS_FLEXIBLE_SERVERS"
_FLEXIBLE_SERVER_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.DBforPostgreSQL/flexibleServers/[^/]+$",
    re.IGNORECASE,
)


def _flexible_servers(value: object) -> object:
    """JSON: {"server": "/subscriptions/…/resourceGroups/…/providers/Microsoft.DBforPostgreSQL/flexibleServers/…"}."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except ValueError:
            raise PydanticCustomError(
                "json_object", "must be a JSON object of server to resource id, got {raw}", {"raw": repr(value[:40])}
            ) from None
    if isinstance(value, dict):
        for name, resource_id in value.items():
            if not isinstance(resource_id, str) or not _FLEXIBLE_SERVER_ID.match(resource_id.strip()):
                raise PydanticCustomError(
                    "flexible_server_id",
                    "maps {name} to {raw}, which is not a flexible server's resource id (/subscriptions/<id>/"
                    "resourceGroups/<group>/providers/Microsoft.DBforPostgreSQL/flexibleServers/<name>)",
                    {"name": repr(name), "raw": repr(resource_id)},
                )
    return value


class Settings(BaseSettings):
    """The app settings, validated. ``from_environ`` reads them (the app's environment, or a given mapping);
    constructed directly (``Settings(storage=..., development_mode=True)``, in tests) it holds what it is
    given, the app settings of the ``environ`` it is given, and the defaults; never ``os.environ``."""

    model_config = SettingsConfigDict(
        frozen=True, case_sensitive=True, validate_by_name=True, validate_by_alias=True, extra="forbid"
    )

    storage: StorageConnection  # from BackupStorage or BackupStorage__* (StorageConnection.from_settings)
    development_mode: Flag = Field(
        False,
        validation_alias="APPBACKUPS_DEVELOPMENT_MODE",
        description="`true` accepts requests without Easy Auth, a local developer standing in when no principal "
        "is given (local development only; refused in Azure)",
    )
    easy_auth_enabled: Flag = Field(
        False,
        validation_alias="WEBSITE_AUTH_ENABLED",
        description="set by App Service when App Service Authentication (Easy Auth) is on: only then are the "
        "principal headers trusted",
    )
    running_in_azure: Annotated[bool, BeforeValidator(_present)] = Field(
        False,
        validation_alias="WEBSITE_INSTANCE_ID",
        description="set by App Service on each instance: the app runs in Azure, where development mode is refused",
    )
    global_admins: Names = Field(
        frozenset(),
        validation_alias="APPBACKUPS_GLOBAL_ADMINS",
        description="comma-separated principal object ids of global admins",
    )
    copy_concurrency: Count = Field(
        16, ge=1, validation_alias="APPBACKUPS_COPY_CONCURRENCY", description="parallel server-side copies"
    )
    block_size_mb: Count = Field(
        8, ge=1, validation_alias="APPBACKUPS_BLOCK_SIZE_MB", description="block size for streamed uploads, in MB"
    )
    chunked_dumps: Flag = Field(
        True,
        validation_alias="APPBACKUPS_CHUNKED_DUMPS",
        description="store new backups' database dumps as deduplicated chunks (false: one dump blob per backup, "
        "the layout of before)",
    )
    database_connect_timeout: Count = Field(
        10,
        ge=1,
        validation_alias="APPBACKUPS_DATABASE_CONNECT_TIMEOUT",
        description="seconds to wait for a database connection",
    )
    postgres_bin_dir: str | None = Field(
        None,
        validation_alias="APPBACKUPS_POSTGRES_BIN_DIR",
        description="the client tools to use for every database; when unset, for each server, the installed client "
        "of its major version (`/usr/lib/postgresql/<major>/bin`, else the closest newer one, else `PATH`)",
    )
    backup_attempts: Count = Field(
        3, ge=1, validation_alias="APPBACKUPS_BACKUP_ATTEMPTS", description="attempts per backup before it fails"
    )
    file_reconciliation_days: Count = Field(
        7,
        ge=0,
        validation_alias="APPBACKUPS_FILE_RECONCILIATION_DAYS",
        description="a backup lists the environment's file store in full (catching content changed under a uuid "
        "it had) when its last full listing is this many days old; the backups between take the previous "
        "backup's file list and read only new uuids; 0 lists it at every backup",
    )
    operation_attempts: Count = Field(
        4, ge=1, validation_alias="APPBACKUPS_OPERATION_ATTEMPTS", description="attempts per operation step"
    )
    operation_retry_seconds: Count = Field(
        5,
        ge=1,
        validation_alias="APPBACKUPS_OPERATION_RETRY_SECONDS",
        description="first retry delay of a step, in seconds; it doubles, to at most 5 minutes",
    )
    operation_lease_seconds: Count = Field(
        120,
        ge=2,
        validation_alias="APPBACKUPS_OPERATION_LEASE_SECONDS",
        description="a worker's lease on a job, in seconds, renewed every quarter of it; a dead worker's job "
        "resumes when it runs out",
    )
    progress_interval_seconds: Count = Field(
        2,
        ge=1,
        validation_alias="APPBACKUPS_PROGRESS_INTERVAL_SECONDS",
        description="a running job saves its progress, and notices a cancel, at least this often, in seconds (one "
        "write or read of its row each time; a restore's database load stops within it)",
    )
    operation_stale_minutes: Count = Field(
        3,
        ge=1,
        validation_alias="APPBACKUPS_OPERATION_STALE_MINUTES",
        description="the reaper wakes a job nobody has touched for this many minutes: a lost message",
    )
    crash_points: Names = Field(
        frozenset(),
        validation_alias="APPBACKUPS_CRASH_POINTS",
        description="fault tests only: kill the process at these named points (`shared/faults.py`); never set it "
        "elsewhere",
    )
    archive_compression: Count = Field(
        1,
        ge=0,
        le=9,
        validation_alias="APPBACKUPS_ARCHIVE_COMPRESSION",
        description="gzip level of download archives",
    )
    upload_max_expanded_mb: Count = Field(
        100 * 1024,
        ge=1,
        validation_alias="APPBACKUPS_UPLOAD_MAX_EXPANDED_MB",
        description="an upload that expands beyond this many MB is refused",
    )
    upload_url_minutes: Count = Field(
        120, ge=1, validation_alias="APPBACKUPS_UPLOAD_URL_MINUTES", description="lifetime of an upload URL, in minutes"
    )
    prune_grace_hours: Count = Field(
        6,
        ge=0,
        validation_alias="APPBACKUPS_PRUNE_GRACE_HOURS",
        description="how long a content object stays marked before a sweep may delete it, in hours",
    )
    freshness_hours: Count = Field(
        26,
        ge=1,
        validation_alias="APPBACKUPS_BACKUP_FRESHNESS_HOURS",
        description="an environment without a successful backup for this many hours is reported",
    )
    event_grid_endpoint: str | None = Field(
        None,
        validation_alias="APPBACKUPS_EVENTGRID_TOPIC_ENDPOINT",
        description="the Event Grid topic every job's outcome is published to (through the managed identity); "
        "none: events go to the namespaces' webhooks only",
    )
    webhook_retry_seconds: Delays = Field(
        (5, 300, 1800, 7200, 18000, 36000, 36000),
        validation_alias="APPBACKUPS_WEBHOOK_RETRY_SECONDS",
        description="comma-separated delays, in seconds, before each retry of a webhook delivery (about a day in "
        "all); then it is given up and marked",
    )
    webhook_timeout_seconds: Count = Field(
        15, ge=1, validation_alias="APPBACKUPS_WEBHOOK_TIMEOUT_SECONDS", description="how long a receiver may take"
    )
    key_vault_url: str | None = Field(
        None,
        pattern=r"^https://[^/?#]+/?$",
        validation_alias="APPBACKUPS_KEY_VAULT_URL",
        description="the Key Vault the webhooks' signing secrets are kept in (`https://<vault>.vault.azure.net/`, "
        "through the managed identity); unset: a local store for development, the blob container "
        "`webhook-secrets` of the storage account (refused in Azure)",
    )
    webhook_secret_grace_hours: Count = Field(
        24,
        ge=0,
        validation_alias="APPBACKUPS_WEBHOOK_SECRET_GRACE_HOURS",
        description="after a webhook's secret is replaced, how long the old one still signs its deliveries beside "
        "the new one, in hours",
    )
    nightly_spread_minutes: Count = Field(
        60,
        ge=0,
        validation_alias="APPBACKUPS_NIGHTLY_SPREAD_MINUTES",
        description="the scheduled backups of a night start spread over this many minutes after the timer, each "
        "environment at its own offset (the same every night); 0 starts them all at once",
    )
    backups_per_database_server: Count = Field(
        4,
        ge=0,
        validation_alias="APPBACKUPS_BACKUPS_PER_DATABASE_SERVER",
        description="at most this many backups read one database server (host and port) at once; the others "
        "wait for a slot; 0 means no limit",
    )
    nightly_schedule: str = Field(
        DEFAULT_SCHEDULES[NIGHTLY_SCHEDULE],
        validation_alias=NIGHTLY_SCHEDULE,
        description="NCRONTAB (six fields, UTC) of the nightly backups; required, as the timer names it "
        "(`make run`, the tests and Bicep set it); the API shows the next run from it",
    )
    capture_schedule: str = Field(
        DEFAULT_SCHEDULES[CAPTURE_SCHEDULE],
        validation_alias=CAPTURE_SCHEDULE,
        description="NCRONTAB (six fields, UTC) of the file-document captures of environments with point-in-time "
        "recovery; required, as the timer names it (`make run`, the tests and Bicep set it); a restore to an instant "
        "counts a file document captured up to one interval of it later",
    )
    point_in_time_container: str = Field(
        Containers.WAL,
        min_length=3,
        validation_alias="APPBACKUPS_POINT_IN_TIME_CONTAINER",
        description="the container of the backup storage account that archived PostgreSQL servers write their base "
        "backups and WAL to with barman-cloud (their `archive_command`), and that point-in-time recovery reads",
    )
    point_in_time_prefix: str = Field(
        "barman",
        min_length=1,
        validation_alias="APPBACKUPS_POINT_IN_TIME_PREFIX",
        description="the folder of that container barman-cloud writes under: `<prefix>/<server>/` per archived "
        "server, the `pointInTime.server` of an environment's registration",
    )
    point_in_time_scratch: str | None = Field(
        None,
        validation_alias="APPBACKUPS_POINT_IN_TIME_SCRATCH",
        description="where the temporary PostgreSQL instances of restores to a point in time live (a base backup "
        "and WAL each, removed afterwards); unset: `appbackups-pointintime` in the system's temporary folder. The "
        "`postgres` user must be able to reach it",
    )
    barman_bin_dir: str = Field(
        "/usr/bin",
        validation_alias="APPBACKUPS_BARMAN_BIN_DIR",
        description="where the `barman-cloud-*` commands are (Debian's `barman-cli-cloud`)",
    )
    flexible_servers: Annotated[dict[str, str] | None, NoDecode, BeforeValidator(_flexible_servers)] = Field(
        None,
        validation_alias=FLEXIBLE_SERVERS,
        description="the archived servers (an environment's `pointInTime.server`) that are Azure Database for "
        'PostgreSQL flexible servers, as JSON: `{"server": "/subscriptions/…/resourceGroups/…/providers/'
        'Microsoft.DBforPostgreSQL/flexibleServers/…"}`; Azure restores each to an instant into a temporary server '
        "beside it, deleted afterwards (docs/guide/point-in-time-flexible-server.md)",
    )
    flexible_restore_lag_seconds: Count = Field(
        300,
        ge=0,
        validation_alias="APPBACKUPS_FLEXIBLE_RESTORE_LAG_SECONDS",
        description="how far behind now a flexible server's recovery window ends, in seconds: Azure restores to "
        "within about 5 minutes of the present",
    )
    verification_servers: Annotated[
        dict[str, VerificationServer] | None, NoDecode, BeforeValidator(_verification_servers)
    ] = Field(
        None,
        validation_alias=VERIFICATION_SERVERS,
        description='where each namespace\'s restore drills make their scratch databases, as JSON: `{"ns": {"host": '
        '…, "port": 5432, "user": …, "database": "postgres", "passwordSetting": …}}`; a namespace without one uses '
        "each environment's own server, which must allow CREATE DATABASE",
    )
    telemetry_export: str = Field(
        "auto",
        pattern=r"^(auto|console|off)$",
        validation_alias="APPBACKUPS_TELEMETRY",
        description="where spans, metrics and correlated logs go (docs/operations/telemetry.md): `auto`, to "
        "Application Insights when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set, else to "
        "`OTEL_EXPORTER_OTLP_ENDPOINT` when set, else nowhere; `console`, printed (the development host); `off`, "
        "nowhere",
    )
    appinsights_connection_string: str | None = Field(
        None,
        validation_alias="APPLICATIONINSIGHTS_CONNECTION_STRING",
        description="the Application Insights resource telemetry goes to (set by the Bicep; ingestion signs in with "
        "the managed identity `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` names)",
    )
    otlp_endpoint: str | None = Field(
        None,
        validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description="an OTLP/HTTP collector (`http://localhost:4318`, say) telemetry goes to when no Application "
        "Insights connection string is set; `OTEL_EXPORTER_OTLP_HEADERS` adds headers",
    )
    environ: Mapping[str, str] = Field(default_factory=dict, repr=False)  # every app setting, for ``setting``

    @property
    def block_size(self) -> int:
        """In bytes."""
        return self.block_size_mb * _MB

    @property
    def upload_expanded_limit(self) -> int:
        """In bytes."""
        return self.upload_max_expanded_mb * _MB

    def setting(self, name: str) -> str | None:
        """An arbitrary app setting, e.g. one that holds an environment's database password."""
        return self.environ.get(name)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # What the constructor is given, then the app settings in its ``environ``; never os.environ itself.
        return (init_settings, AppSettingsSource(settings_cls))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from ``environ`` alone (default: the process environment). A bad value is a ValueError
        naming the app setting; a blank one counts as unset."""
        env = dict(os.environ if environ is None else environ)
        storage = StorageConnection.from_settings(STORAGE_CONNECTION, env)
        try:
            return cls(storage=storage, environ=env)
        except ValidationError as error:
            raise ValueError("; ".join(_describe(item) for item in error.errors(include_url=False))) from None


class AppSettingsSource(PydanticBaseSettingsSource):
    """Each field with an app setting's name (its alias) from the ``environ`` the constructor was given,
    case-sensitively, blanks as unset; raw strings, left to the fields' validators."""

    def _environ(self) -> Mapping[str, str]:
        return self.current_state.get("environ") or {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # By the app setting's name alone, never by the field's own (validate_by_name is for the constructor);
        # storage and environ, which have none, come from the constructor.
        name = field.validation_alias
        if not isinstance(name, str):
            return None, field_name, False
        value = self._environ().get(name)
        return (value if value and value.strip() else None), name, False

    def __call__(self) -> dict[str, Any]:
        found = (self.get_field_value(field, name) for name, field in self.settings_cls.model_fields.items())
        return {name: value for value, name, _ in found if value is not None}


def _describe(error: ErrorDetails) -> str:
    name = ".".join(str(part) for part in error["loc"])
    context = error.get("ctx", {})
    if error["type"] == "greater_than_equal":
        return f"app setting {name} must be at least {context['ge']}, got {error['input']}"
    if error["type"] == "less_than_equal":
        return f"app setting {name} must be at most {context['le']}, got {error['input']}"
    return f"app setting {name} {error['msg']}"
