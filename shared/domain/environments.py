"""Environments: what an app environment is, its states, and the rules for moving between them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.verification import LastDrill
from shared.errors import Conflict


class EnvironmentState(StrEnum):
    CREATING = "Creating"
    CREATION_FAILED = "CreationFailed"
    DEPLOYING = "Deploying"
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    RESTORING = "Restoring"
    # Set only by DELETE /api/environments/{env}: the app is gone, its backups stay until they expire.
    DEREGISTERED = "Deregistered"


class MissingFiles(StrEnum):
    """What a backup does with a file-document row whose content is not in the file store."""

    WARN = "warn"  # the backup finishes, with a warning that counts and names them
    FAIL = "fail"  # the backup fails, as it always did


@dataclass(frozen=True)
class VerificationQuery:
    """An assertion a restore drill runs read-only against the restored database: it must return true."""

    name: str
    query: str


# States a registration (PUT) cannot set: each belongs to the operation that sets it.
RESERVED_STATES = frozenset({EnvironmentState.RESTORING, EnvironmentState.DEREGISTERED})

BACKUP_ELIGIBLE_STATES = frozenset({EnvironmentState.RUNNING, EnvironmentState.STOPPED})

_WHY_NOT = {
    EnvironmentState.CREATING: "its creation is still in progress",
    EnvironmentState.CREATION_FAILED: "its creation failed",
    EnvironmentState.DEPLOYING: "a deployment package is being deployed",
    EnvironmentState.STARTING: "it is starting",
    EnvironmentState.STOPPING: "it is stopping",
    EnvironmentState.RESTORING: "a restore is in progress",
    EnvironmentState.DEREGISTERED: "it was deregistered",
}


@dataclass(frozen=True)
class DatabaseConnection:
    """Where the environment's PostgreSQL database is. The password itself is never stored: either
    ``password_setting`` names the app setting that holds it (a Key Vault reference in Azure), or
    ``entra_auth`` asks for a Microsoft Entra token for the app's managed identity."""

    host: str
    database: str
    user: str
    port: int = 5432
    password_setting: str | None = None
    entra_auth: bool = False
    ssl_mode: str = "prefer"


@dataclass(frozen=True)
class FileLocation:
    """Where the environment's file documents are: blob ``{prefix}{uuid}`` in ``container`` of the
    storage account at ``account_url`` (the service's own account when not given)."""

    container: str
    prefix: str = ""
    account_url: str | None = None

    def blob_name(self, file_uuid: str) -> str:
        return f"{self.prefix}{file_uuid}"


DEFAULT_WINDOW_DAYS = 7  # of point-in-time recovery


@dataclass(frozen=True)
class PointInTime:
    """Point-in-time recovery of an environment: its database's continuous archive is that of ``server`` (the
    archive's name for the database server), its file documents are captured as the database refers to them,
    and any instant of the last ``window_days`` days can be restored."""

    server: str
    window_days: int = DEFAULT_WINDOW_DAYS

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)


@dataclass(frozen=True)
class Registration:
    """What a namespace admin says about an environment when registering it (or replacing that)."""

    namespace: str
    app_name: str
    display_name: str
    state: EnvironmentState
    database: DatabaseConnection
    files: FileLocation
    model_version: str | None = None
    deployment_package: str | None = None
    file_document_query: str | None = None
    missing_files: MissingFiles = MissingFiles.WARN
    verification_queries: tuple[VerificationQuery, ...] = ()
    scheduled_drills: bool = True
    point_in_time: PointInTime | None = None


@dataclass(frozen=True)
class Environment:
    id: str
    namespace: str
    app_name: str
    display_name: str
    state: EnvironmentState
    database: DatabaseConnection
    files: FileLocation
    created_on: datetime
    updated_on: datetime
    model_version: str | None = None
    deployment_package: str | None = None
    file_document_query: str | None = None
    missing_files: MissingFiles = MissingFiles.WARN
    verification_queries: tuple[VerificationQuery, ...] = ()
    scheduled_drills: bool = True  # the weekly drill tests its newest backup; false opts out
    last_drill: LastDrill | None = None  # its newest finished drill: the measured restore time
    point_in_time: PointInTime | None = None  # None: no point-in-time recovery, its file documents not captured
    active_restore_id: str | None = None
    deregistered_on: datetime | None = None
    deregistered_by: str | None = None  # the name of who deregistered it
    etag: str = ""

    @property
    def registered(self) -> bool:
        return self.state is not EnvironmentState.DEREGISTERED

    def ensure_registered(self, action: str) -> None:
        if not self.registered:
            raise Conflict(
                f"Environment {self.id} was deregistered on {self.deregistered_on:%Y-%m-%d %H:%M} UTC; {action} is "
                f"not possible. Its backups can still be listed, downloaded and restored into another environment "
                f"of namespace {self.namespace}.",
                code="environment_deregistered",
                state=self.state.value,
            )

    def deregistered(self, now: datetime, by: str) -> Environment:
        """The registration's tombstone: it keeps the namespace (whose permissions guard the backups that stay)
        and answers as Deregistered everywhere else."""
        self.ensure_registered("deregistering it again")
        self.ensure_not_restoring("deregistering it")
        return replace(
            self,
            state=EnvironmentState.DEREGISTERED,
            active_restore_id=None,
            deregistered_on=now,
            deregistered_by=by,
            updated_on=now,
        )

    def ensure_can_back_up(self) -> None:
        if self.state not in BACKUP_ELIGIBLE_STATES:
            raise Conflict(
                f"Environment {self.id} is {self.state.value}: a backup can be created only when it is Running or "
                f"Stopped ({_WHY_NOT.get(self.state, 'it is in transition')}).",
                code="environment_not_eligible",
                state=self.state.value,
            )

    def ensure_not_restoring(self, action: str) -> None:
        if self.state is EnvironmentState.RESTORING:
            raise Conflict(
                f"Environment {self.id} is being restored; {action} is not possible until the restore ends.",
                code="restore_in_progress",
                state=self.state.value,
                restoreId=self.active_restore_id,
            )

    def stopped(self, now: datetime) -> Environment:
        """The environment after a stop. Stopping a stopped environment changes nothing."""
        if self.state is EnvironmentState.STOPPED:
            return self
        self.ensure_not_restoring("stopping it")
        if self.state is not EnvironmentState.RUNNING:
            raise Conflict(
                f"Environment {self.id} is {self.state.value}; only a Running environment can be stopped.",
                code="invalid_state_transition",
                state=self.state.value,
            )
        return replace(self, state=EnvironmentState.STOPPED, updated_on=now)

    def started(self, now: datetime) -> Environment:
        """The environment after a start. Starting a running environment changes nothing."""
        if self.state is EnvironmentState.RUNNING:
            return self
        self.ensure_not_restoring("starting it")
        if self.state is not EnvironmentState.STOPPED:
            raise Conflict(
                f"Environment {self.id} is {self.state.value}; only a Stopped environment can be started.",
                code="invalid_state_transition",
                state=self.state.value,
            )
        return replace(self, state=EnvironmentState.RUNNING, updated_on=now)
