"""The environments table: one row per environment, ETag-guarded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.adapters.tables import Row, RowTable
from shared.catalog.codec import Codec, dumps, from_iso, loads, to_iso
from shared.catalog.repository import Repository
from shared.domain.environments import (
    DEFAULT_WINDOW_DAYS,
    DatabaseConnection,
    Environment,
    EnvironmentState,
    FileLocation,
    MissingFiles,
    PointInTime,
    VerificationQuery,
)
from shared.domain.verification import LastDrill
from shared.errors import AlreadyExists, Conflict, NotFound

_ROW_KEY = "environment"


def _to_row(environment: Environment) -> Row:
    database = environment.database
    body: dict[str, Any] = {
        "appName": environment.app_name,
        "displayName": environment.display_name,
        "database": {
            "host": database.host,
            "port": database.port,
            "database": database.database,
            "user": database.user,
            "passwordSetting": database.password_setting,
            "entraAuth": database.entra_auth,
            "sslMode": database.ssl_mode,
        },
        "files": {
            "container": environment.files.container,
            "prefix": environment.files.prefix,
            "accountUrl": environment.files.account_url,
        },
        "modelVersion": environment.model_version,
        "deploymentPackage": environment.deployment_package,
        "fileDocumentQuery": environment.file_document_query,
        "missingFiles": environment.missing_files.value,
        "verificationQueries": [{"name": q.name, "query": q.query} for q in environment.verification_queries],
        "scheduledDrills": environment.scheduled_drills,
        "lastDrill": environment.last_drill.to_dict() if environment.last_drill else None,
        "pointInTime": _point_in_time_body(environment.point_in_time),
        "createdOn": to_iso(environment.created_on),
    }
    properties = {
        "Namespace": environment.namespace,
        "State": environment.state.value,
        "ActiveRestoreId": environment.active_restore_id,
        "DeregisteredOn": to_iso(environment.deregistered_on),
        "DeregisteredBy": environment.deregistered_by,
        "UpdatedOn": to_iso(environment.updated_on),
        "Body": dumps(body),
    }
    return Row(environment.id, _ROW_KEY, properties, environment.etag)


def _point_in_time_body(point_in_time: PointInTime | None) -> dict[str, Any] | None:
    if point_in_time is None:
        return None
    return {"server": point_in_time.server, "windowDays": point_in_time.window_days}


def _point_in_time(body: dict[str, Any] | None) -> PointInTime | None:
    """Rows written before point-in-time recovery have none."""
    if not body:
        return None
    return PointInTime(server=str(body["server"]), window_days=int(body.get("windowDays") or DEFAULT_WINDOW_DAYS))


def _from_row(row: Row) -> Environment:
    body = loads(row.get("Body"))
    database = body["database"]
    files = body["files"]
    return Environment(
        id=row.partition_key,
        namespace=row["Namespace"],
        app_name=body["appName"],
        display_name=body["displayName"],
        state=EnvironmentState(row["State"]),
        database=DatabaseConnection(
            host=database["host"],
            port=int(database["port"]),
            database=database["database"],
            user=database["user"],
            password_setting=database.get("passwordSetting"),
            entra_auth=bool(database.get("entraAuth")),
            ssl_mode=database.get("sslMode") or "prefer",
        ),
        files=FileLocation(
            container=files["container"], prefix=files.get("prefix") or "", account_url=files.get("accountUrl")
        ),
        created_on=from_iso(body["createdOn"]),  # type: ignore[arg-type]
        updated_on=from_iso(row["UpdatedOn"]),  # type: ignore[arg-type]
        model_version=body.get("modelVersion"),
        deployment_package=body.get("deploymentPackage"),
        file_document_query=body.get("fileDocumentQuery"),
        missing_files=MissingFiles(body.get("missingFiles") or MissingFiles.WARN.value),
        verification_queries=tuple(
            VerificationQuery(str(q["name"]), str(q["query"])) for q in body.get("verificationQueries") or ()
        ),
        scheduled_drills=bool(body.get("scheduledDrills", True)),
        last_drill=LastDrill.from_dict(body.get("lastDrill")),
        point_in_time=_point_in_time(body.get("pointInTime")),
        active_restore_id=row.get("ActiveRestoreId"),
        deregistered_on=from_iso(row.get("DeregisteredOn")),
        deregistered_by=row.get("DeregisteredBy"),
        etag=row.etag,
    )


_CODEC = Codec(_to_row, _from_row, lambda environment: f"Environment {environment.id!r}")


class EnvironmentCatalog:
    def __init__(self, table: RowTable) -> None:
        self._environments = Repository(table, _CODEC)

    def find(self, environment_id: str) -> Environment | None:
        return self._environments.load(environment_id, _ROW_KEY)

    def get(self, environment_id: str) -> Environment:
        environment = self.find(environment_id)
        if environment is None:
            raise NotFound(f"There is no environment {environment_id!r}.", code="environment_not_found")
        return environment

    def all(self) -> list[Environment]:
        """Every row, deregistered environments included: pruning still expires their backups and must count
        what those refer to. What lists environments to people or checks them uses ``registered``."""
        environments = list(self._environments.all(row_key_prefix=_ROW_KEY))
        return sorted(environments, key=lambda environment: (environment.namespace, environment.id))

    def registered(self) -> list[Environment]:
        return [environment for environment in self.all() if environment.registered]

    def add(self, environment: Environment) -> Environment:
        try:
            return self._environments.insert(environment)
        except AlreadyExists as error:
            raise Conflict(
                f"Environment {environment.id!r} was registered at the same time by another request.",
                code="concurrent_update",
            ) from error

    def save(self, environment: Environment) -> Environment:
        """Write the environment only if nobody changed it since it was read (its ETag)."""
        return self._environments.save(environment)

    def update(self, environment_id: str, change: Callable[[Environment], Environment]) -> Environment | None:
        """Apply ``change`` to the environment as it is now, reading it again when another writer was first.
        None when it does not exist."""
        return self._environments.update(environment_id, _ROW_KEY, change)
