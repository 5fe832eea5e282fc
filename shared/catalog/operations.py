"""The operations table: one row per operation, its steps in the JSON body."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from shared.adapters.tables import Row, RowTable
from shared.catalog.codec import Codec, dumps, from_iso, loads, to_iso
from shared.catalog.repository import Repository
from shared.domain.backups import Actor
from shared.domain.operations import Operation, OperationStatus, Progress, Step, StepStatus
from shared.errors import NotFound

_ROW_KEY = "operation"


def _step_to_json(step: Step) -> dict[str, Any]:
    return {
        "name": step.name,
        "title": step.title,
        "status": step.status.value,
        "attempts": step.attempts,
        "startedOn": to_iso(step.started_on),
        "finishedOn": to_iso(step.finished_on),
        "progress": asdict(step.progress),
        "message": step.message,
        "output": step.output,
    }


def _step_from_json(document: dict[str, Any]) -> Step:
    return Step(
        name=document["name"],
        title=document["title"],
        status=StepStatus(document["status"]),
        attempts=int(document.get("attempts", 0)),
        started_on=from_iso(document.get("startedOn")),
        finished_on=from_iso(document.get("finishedOn")),
        progress=Progress(**document.get("progress", {})),
        message=document.get("message", ""),
        output=document.get("output", {}),
    )


def _to_row(operation: Operation) -> Row:
    body = {
        "steps": [_step_to_json(step) for step in operation.steps],
        "parameters": operation.parameters,
        "warnings": list(operation.warnings),
        "createdById": operation.created_by.id,
        "createdByName": operation.created_by.name,
        "errorStep": operation.error_step,
        "error": operation.error,
        "noReturn": operation.no_return,
        "cancelRequestedBy": (
            {"id": operation.cancel_requested_by.id, "name": operation.cancel_requested_by.name}
            if operation.cancel_requested_by
            else None
        ),
        "cancelRequestedOn": to_iso(operation.cancel_requested_on),
        "traceParent": operation.trace_parent,
    }
    properties = {
        "Kind": operation.kind,
        "Status": operation.status.value,
        "EnvironmentId": operation.environment_id,
        "Namespace": operation.namespace,
        "SnapshotId": operation.backup_id,
        "CreatedOn": to_iso(operation.created_on),
        "UpdatedOn": to_iso(operation.updated_on),
        "FinishedOn": to_iso(operation.finished_on),
        "LeaseOwner": operation.lease_owner,
        "LeaseUntil": to_iso(operation.lease_until),
        "HeartbeatOn": to_iso(operation.heartbeat_on),
        "NotBefore": to_iso(operation.not_before),
        "Ending": operation.ending.value if operation.ending else None,
        "Announced": operation.announced,
        "Open": operation.open,
        "Body": dumps(body),
    }
    return Row(operation.id, _ROW_KEY, properties, operation.etag)


def _from_row(row: Row) -> Operation:
    body = loads(row.get("Body"))
    cancelled_by = body.get("cancelRequestedBy")
    return Operation(
        id=row.partition_key,
        kind=row["Kind"],
        status=OperationStatus(row["Status"]),
        environment_id=row["EnvironmentId"],
        namespace=row["Namespace"],
        backup_id=row.get("SnapshotId"),
        created_on=from_iso(row["CreatedOn"]),  # type: ignore[arg-type]
        updated_on=from_iso(row["UpdatedOn"]),  # type: ignore[arg-type]
        finished_on=from_iso(row.get("FinishedOn")),
        created_by=Actor(body.get("createdById", ""), body.get("createdByName", "")),
        steps=tuple(_step_from_json(step) for step in body.get("steps", [])),
        parameters=body.get("parameters", {}),
        warnings=tuple(body.get("warnings", [])),
        error_step=body.get("errorStep"),
        error=body.get("error", ""),
        lease_owner=row.get("LeaseOwner"),
        lease_until=from_iso(row.get("LeaseUntil")),
        heartbeat_on=from_iso(row.get("HeartbeatOn")),
        not_before=from_iso(row.get("NotBefore")),
        ending=OperationStatus(row["Ending"]) if row.get("Ending") else None,
        announced=bool(row.get("Announced", True)),
        no_return=body.get("noReturn", ""),
        cancel_requested_by=Actor(cancelled_by["id"], cancelled_by["name"]) if cancelled_by else None,
        cancel_requested_on=from_iso(body.get("cancelRequestedOn")),
        trace_parent=body.get("traceParent", ""),
        etag=row.etag,
    )


_CODEC = Codec(_to_row, _from_row, lambda operation: f"Operation {operation.id}")


class OperationCatalog:
    def __init__(self, table: RowTable) -> None:
        self._operations = Repository(table, _CODEC, exists_code="operation_exists")

    def find(self, operation_id: str) -> Operation | None:
        return self._operations.load(operation_id, _ROW_KEY)

    def get(self, operation_id: str, kind: str | None = None) -> Operation:
        operation = self.find(operation_id)
        if operation is None or (kind is not None and operation.kind != kind):
            noun = kind or "operation"
            raise NotFound(f"There is no {noun} {operation_id!r}.", code=f"{noun}_not_found")
        return operation

    def add(self, operation: Operation) -> Operation:
        return self._operations.insert(operation)

    def save(self, operation: Operation) -> Operation:
        return self._operations.save(operation)

    def delete(self, operation: Operation) -> None:
        self._operations.delete(operation)

    def open_operations(self) -> Iterator[Operation]:
        """Operations with work left: running, undoing, or not yet past what follows their end."""
        return self._operations.all(equals={"Open": True})

    def running(self, environment_id: str | None = None) -> Iterator[Operation]:
        equals: dict[str, object] = {"Status": OperationStatus.RUNNING.value}
        if environment_id is not None:
            equals["EnvironmentId"] = environment_id
        return self._operations.all(equals=equals)

    def of_kind(self, kind: str, status: OperationStatus) -> Iterator[Operation]:
        return self._operations.all(equals={"Kind": kind, "Status": status.value})
