"""Request and response bodies of the environment routes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, StringConstraints, model_validator

from shared.contracts.common import ApiModel, BackupId, BackupIdOrNone, EnvironmentId, NamespaceName
from shared.domain.backups import BackupStatus, Tier
from shared.domain.environments import (
    DatabaseConnection,
    Environment,
    EnvironmentState,
    FileLocation,
    MissingFiles,
    PointInTime,
    Registration,
    VerificationQuery,
)
from shared.domain.schedules import ScheduleState

AppSettingName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")]
ContainerName = Annotated[
    str,
    StringConstraints(min_length=3, max_length=63, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$"),
    Field(description="An Azure Blob container name."),
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class DatabaseConnectionBody(ApiModel):
    host: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    database: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    user: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    password_setting: AppSettingName | None = Field(
        default=None,
        description="Name of the app setting that holds the password (in Azure: a Key Vault reference). "
        "The password itself is never stored.",
    )
    entra_auth: bool = Field(default=False, description="Sign in with a Microsoft Entra token of the app's identity.")
    ssl_mode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> DatabaseConnectionBody:
        if self.password_setting and self.entra_auth:
            raise ValueError("give either passwordSetting or entraAuth, not both")
        return self

    def to_domain(self) -> DatabaseConnection:
        return DatabaseConnection(
            host=self.host,
            port=self.port,
            database=self.database,
            user=self.user,
            password_setting=self.password_setting,
            entra_auth=self.entra_auth,
            ssl_mode=self.ssl_mode,
        )

    @classmethod
    def of(cls, connection: DatabaseConnection) -> DatabaseConnectionBody:
        return cls(
            host=connection.host,
            port=connection.port,
            database=connection.database,
            user=connection.user,
            password_setting=connection.password_setting,
            entra_auth=connection.entra_auth,
            ssl_mode=connection.ssl_mode,  # type: ignore[arg-type]
        )


class FileLocationBody(ApiModel):
    account_url: AnyHttpUrl | None = Field(
        default=None, description="Blob endpoint of the storage account; the service's own account when absent."
    )
    container: ContainerName
    prefix: Annotated[str, StringConstraints(max_length=512)] = ""

    def to_domain(self) -> FileLocation:
        return FileLocation(
            container=self.container,
            prefix=self.prefix,
            account_url=str(self.account_url).rstrip("/") if self.account_url else None,
        )

    @classmethod
    def of(cls, location: FileLocation) -> FileLocationBody:
        return cls(container=location.container, prefix=location.prefix, account_url=location.account_url)  # type: ignore[arg-type]


class VerificationQueryBody(ApiModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    query: Annotated[str, StringConstraints(min_length=1, max_length=4000)] = Field(
        description="SQL that must return one row whose first column is true; run read-only against the "
        "restored database of a restore drill."
    )


class PointInTimeBody(ApiModel):
    """Point-in-time recovery: the database's continuous archive and the file documents' captures."""

    server: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")] = Field(
        description="The name of the environment's database server in the point-in-time archive (letters, digits, "
        "'.', '_' and '-'; up to 128 characters)."
    )
    window_days: Annotated[int, Field(ge=1, le=35)] = Field(
        default=7,
        description="How many days back any instant can be restored (1 to 35, as Azure Database for PostgreSQL "
        "keeps its own backups); the file documents referred to in that time are kept as long.",
    )

    def to_domain(self) -> PointInTime:
        return PointInTime(server=self.server, window_days=self.window_days)

    @classmethod
    def of(cls, point_in_time: PointInTime) -> PointInTimeBody:
        return cls(server=point_in_time.server, window_days=point_in_time.window_days)


class LastDrillView(ApiModel):
    backup_id: BackupId
    status: str = Field(description="Passed or Failed.")
    verified_on: datetime
    restore_seconds: float | None = Field(description="How long loading the dump took: the measured restore time.")
    dump_size: int | None
    database_size: int | None
    point_in_time: datetime | None = Field(
        None, description="The instant of the recovery window it drilled, when it drilled a backup of the past."
    )


class EnvironmentBody(ApiModel):
    """Registers an environment, or replaces its registration."""

    namespace: NamespaceName
    app_name: ShortText
    display_name: ShortText
    state: EnvironmentState = Field(
        default=EnvironmentState.STOPPED,
        description="The state the platform reports. `Restoring` is set only by a restore, `Deregistered` only by "
        "DELETE /api/environments/{env}.",
    )
    database: DatabaseConnectionBody
    files: FileLocationBody
    model_version: Annotated[str, StringConstraints(max_length=100)] | None = None
    deployment_package: Annotated[str, StringConstraints(max_length=300)] | None = None
    file_document_query: Annotated[str, StringConstraints(min_length=1, max_length=4000)] | None = Field(
        default=None,
        description="SQL returning the uuids of referenced file documents (one text column), for apps whose "
        'file documents are not in "system$filedocument".',
    )
    missing_files: MissingFiles = Field(
        default=MissingFiles.WARN,
        description="A file-document row whose content is missing from the file store: `warn` (the backup "
        "finishes with warnings naming them) or `fail` (the backup fails).",
    )
    verification_queries: Annotated[list[VerificationQueryBody], Field(max_length=50)] = Field(
        default_factory=list, description="Assertions a restore drill checks against the restored database."
    )
    scheduled_drills: bool = Field(
        default=True, description="Whether the weekly restore drill tests this environment's newest backup."
    )
    point_in_time: PointInTimeBody | None = Field(
        default=None,
        description="Point-in-time recovery: the database's archive and the window; its file documents are then "
        "captured within a minute of being referred to. Absent or null: off.",
    )

    @model_validator(mode="after")
    def _distinct_query_names(self) -> EnvironmentBody:
        names = [query.name for query in self.verification_queries]
        if len(names) != len(set(names)):
            raise ValueError("verificationQueries: each name must be distinct")
        return self

    def to_registration(self) -> Registration:
        return Registration(
            namespace=self.namespace,
            app_name=self.app_name,
            display_name=self.display_name,
            state=self.state,
            database=self.database.to_domain(),
            files=self.files.to_domain(),
            model_version=self.model_version,
            deployment_package=self.deployment_package,
            file_document_query=self.file_document_query,
            missing_files=self.missing_files,
            verification_queries=tuple(VerificationQuery(q.name, q.query) for q in self.verification_queries),
            scheduled_drills=self.scheduled_drills,
            point_in_time=self.point_in_time.to_domain() if self.point_in_time else None,
        )


class LastScheduledBackupView(ApiModel):
    night: date
    backup_id: BackupIdOrNone
    tiers: list[Tier] = Field(description="The timers that asked for this night's backup.")
    status: BackupStatus | None = Field(description="Null when the backup has since been pruned or deleted.")
    tier: Tier | None = Field(description="Its tier: the longest-kept of the tiers due that night.")


class ScheduleView(ApiModel):
    nightly_schedule: str = Field(description="NCRONTAB, UTC.")
    next_run: datetime | None
    last_scheduled_backup: LastScheduledBackupView | None

    @classmethod
    def of(cls, state: ScheduleState, nightly_schedule: str) -> ScheduleView:
        last = None
        if state.last is not None:
            backup = state.last_backup
            last = LastScheduledBackupView(
                night=state.last.night,
                backup_id=state.last.backup_id,
                tiers=list(state.last.tiers),
                status=backup.status if backup else None,
                tier=backup.tier if backup else None,
            )
        return cls(nightly_schedule=nightly_schedule, next_run=state.next_run, last_scheduled_backup=last)


class EnvironmentView(ApiModel):
    id: EnvironmentId
    namespace: str
    app_name: str
    display_name: str
    state: EnvironmentState
    database: DatabaseConnectionBody
    files: FileLocationBody
    model_version: str | None
    deployment_package: str | None
    file_document_query: str | None
    missing_files: MissingFiles = MissingFiles.WARN
    verification_queries: list[VerificationQueryBody] = Field(default_factory=list)
    scheduled_drills: bool = True
    last_drill: LastDrillView | None = Field(
        default=None, description="Its newest finished restore drill: the measured restore time and size."
    )
    point_in_time: PointInTimeBody | None = Field(
        default=None, description="Point-in-time recovery: the database's archive and the window; null when off."
    )
    active_restore_id: str | None = Field(description="The restore that holds the environment, while one runs.")
    created_on: datetime
    updated_on: datetime
    etag: str = Field(description="Send back as If-Match to update only the version you read.")
    deregistered_on: datetime | None = Field(
        default=None, description="When the registration was removed (state Deregistered); its backups stay."
    )
    deregistered_by: str | None = Field(default=None, description="Who removed the registration.")
    schedule: ScheduleView | None = Field(
        default=None, description="The last scheduled backup and the next run (on single-environment reads)."
    )

    @classmethod
    def of(cls, environment: Environment, schedule: ScheduleView | None = None) -> EnvironmentView:
        return cls(
            id=environment.id,
            namespace=environment.namespace,
            app_name=environment.app_name,
            display_name=environment.display_name,
            state=environment.state,
            database=DatabaseConnectionBody.of(environment.database),
            files=FileLocationBody.of(environment.files),
            model_version=environment.model_version,
            deployment_package=environment.deployment_package,
            file_document_query=environment.file_document_query,
            missing_files=environment.missing_files,
            verification_queries=[
                VerificationQueryBody(name=q.name, query=q.query) for q in environment.verification_queries
            ],
            scheduled_drills=environment.scheduled_drills,
            last_drill=LastDrillView(
                backup_id=environment.last_drill.backup_id,
                status=environment.last_drill.status.value,
                verified_on=environment.last_drill.verified_on,
                restore_seconds=environment.last_drill.restore_seconds,
                dump_size=environment.last_drill.dump_size,
                database_size=environment.last_drill.database_size,
                point_in_time=environment.last_drill.point_in_time,
            )
            if environment.last_drill
            else None,
            point_in_time=PointInTimeBody.of(environment.point_in_time) if environment.point_in_time else None,
            active_restore_id=environment.active_restore_id,
            created_on=environment.created_on,
            updated_on=environment.updated_on,
            etag=environment.etag,
            deregistered_on=environment.deregistered_on,
            deregistered_by=environment.deregistered_by,
            schedule=schedule,
        )
