"""Routes: backups of an environment (create, list, details, edit, delete)."""

from __future__ import annotations

from functions.http import CONTINUATION, ApiBlueprint, ApiRequest, Reply, RouteSpec, in_environment, page_size
from shared.bootstrap import services
from shared.contracts.backups import BackupView, CreateBackupBody, EditBackupBody
from shared.contracts.common import Page
from shared.domain.access import Permission

bp = ApiBlueprint()

MANAGE = in_environment(Permission.MANAGE_BACKUPS)

TAG = "Backups"

LIMIT = page_size(default=20, maximum=100)


def _location(environment_id: str, backup_id: str) -> str:
    return f"/api/environments/{environment_id}/backups/{backup_id}"


@bp.api(
    "environments/{env}/backups",
    "GET",
    RouteSpec(
        "List backups, newest first",
        MANAGE,
        response_model=Page[BackupView],
        query=(LIMIT, CONTINUATION),
        tag=TAG,
    ),
)
def list_backups(request: ApiRequest) -> Reply:
    backup_list, token = services().backups.page(
        request.environment_id(),
        limit=request.query_int(LIMIT),
        continuation=request.continuation_token(),
    )
    backups = services().backups
    views = [BackupView.of(backup, backups.operation(backup)) for backup in backup_list]
    return Reply(200, Page[BackupView](items=views, continuation_token=token))


@bp.api(
    "environments/{env}/backups",
    "POST",
    RouteSpec(
        "Create a backup, of now or (pointInTime) of the past (answers 202; poll Location)",
        MANAGE,
        request_model=CreateBackupBody,
        response_model=BackupView,
        success_status=202,
        tag=TAG,
    ),
)
def create_backup(request: ApiRequest) -> Reply:
    """With ``pointInTime``, a backup of the past: 409 when the environment has no point-in-time recovery, 422
    naming the recovery window when the instant is outside it."""
    body = request.body(CreateBackupBody)
    backups = services().backups
    backup = backups.request(
        request.environment_id(),
        request.caller,
        comment=body.comment,
        point_in_time=body.point_in_time,
        reconcile=body.reconcile,
    )
    headers = {"Location": _location(backup.environment_id, backup.id), "Retry-After": "5"}
    return Reply(202, BackupView.of(backup), headers)


@bp.api(
    "environments/{env}/backups/{id}", "GET", RouteSpec("Backup details", MANAGE, response_model=BackupView, tag=TAG)
)
def get_backup(request: ApiRequest) -> Reply:
    backups = services().backups
    backup = backups.get(request.environment_id(), request.route("id"))
    headers = {"Retry-After": "5"} if backup.status.value == "Processing" else {}
    return Reply(200, BackupView.of(backup, backups.operation(backup)), headers)


@bp.api(
    "environments/{env}/backups/{id}/cancel",
    "POST",
    RouteSpec(
        "Cancel a backup being made (202 while it stops; 200 once Cancelled; 409 unless Processing)",
        MANAGE,
        response_model=BackupView,
        success_status=202,
        also_success=(200,),
        tag=TAG,
    ),
)
def cancel_backup(request: ApiRequest) -> Reply:
    backups = services().backups
    backup = backups.cancel(request.environment_id(), request.route("id"), request.caller)
    view = BackupView.of(backup, backups.operation(backup))
    if backup.status.value == "Cancelled":
        return Reply(200, view)
    return Reply(202, view, {"Location": _location(backup.environment_id, backup.id), "Retry-After": "2"})


@bp.api(
    "environments/{env}/backups/{id}",
    "PATCH",
    RouteSpec(
        "Edit a backup's comment or pin it (keepUntil)",
        MANAGE,
        request_model=EditBackupBody,
        response_model=BackupView,
        tag=TAG,
    ),
)
def edit_backup(request: ApiRequest) -> Reply:
    body = request.body(EditBackupBody)
    changes: dict[str, object] = {}
    if "comment" in body.model_fields_set and body.comment is not None:
        changes["comment"] = body.comment
    if "keep_until" in body.model_fields_set:
        changes["keep_until"] = body.keep_until
    backup = services().backups.edit(request.environment_id(), request.route("id"), request.caller, **changes)  # type: ignore[arg-type]
    return Reply(200, BackupView.of(backup))


@bp.api("environments/{env}/backups/{id}", "DELETE", RouteSpec("Delete a backup", MANAGE, success_status=204, tag=TAG))
def delete_backup(request: ApiRequest) -> Reply:
    services().backups.delete(request.environment_id(), request.route("id"), request.caller)
    return Reply(204)
