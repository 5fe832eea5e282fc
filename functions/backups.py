"""Routes: backups of an environment (create, list, details, edit, delete)."""

from __future__ import annotations

from functions.http import CONTINUATION, ApiBlueprint, ApiRequest, Reply, RouteSpec, in_environment, page_size
from shared.bootstrap import services
from shared.contracts.backups import CreateBackupBody, EditBackupBody, SnapshotView
from shared.contracts.common import Page
from shared.domain.access import Permission

bp = ApiBlueprint()

MANAGE = in_environment(Permission.MANAGE_BACKUPS)

TAG = "Backups"

LIMIT = page_size(default=20, maximum=100)


def _location(environment_id: str, snapshot_id: str) -> str:
    return f"/api/environments/{environment_id}/backups/{snapshot_id}"


@bp.api(
    "environments/{env}/backups",
    "GET",
    RouteSpec(
        "List backups, newest first",
        MANAGE,
        response_model=Page[SnapshotView],
        query=(LIMIT, CONTINUATION),
        tag=TAG,
    ),
)
def list_backups(request: ApiRequest) -> Reply:
    snapshots, token = services().backups.page(
        request.environment_id(),
        limit=request.query_int(LIMIT),
        continuation=request.continuation_token(),
    )
    backups = services().backups
    views = [SnapshotView.of(snapshot, backups.operation(snapshot)) for snapshot in snapshots]
    return Reply(200, Page[SnapshotView](items=views, continuation_token=token))


@bp.api(
    "environments/{env}/backups",
    "POST",
    RouteSpec(
        "Create a backup (answers 202; poll Location)",
        MANAGE,
        request_model=CreateBackupBody,
        response_model=SnapshotView,
        success_status=202,
        tag=TAG,
    ),
)
def create_backup(request: ApiRequest) -> Reply:
    body = request.body(CreateBackupBody)
    snapshot = services().backups.request(request.environment_id(), request.caller, comment=body.comment)
    headers = {"Location": _location(snapshot.environment_id, snapshot.id), "Retry-After": "5"}
    return Reply(202, SnapshotView.of(snapshot), headers)


@bp.api(
    "environments/{env}/backups/{id}", "GET", RouteSpec("Backup details", MANAGE, response_model=SnapshotView, tag=TAG)
)
def get_backup(request: ApiRequest) -> Reply:
    backups = services().backups
    snapshot = backups.get(request.environment_id(), request.route("id"))
    headers = {"Retry-After": "5"} if snapshot.status.value == "Processing" else {}
    return Reply(200, SnapshotView.of(snapshot, backups.operation(snapshot)), headers)


@bp.api(
    "environments/{env}/backups/{id}/cancel",
    "POST",
    RouteSpec(
        "Cancel a backup being made (202 while it stops; 200 once Cancelled; 409 unless Processing)",
        MANAGE,
        response_model=SnapshotView,
        success_status=202,
        also_success=(200,),
        tag=TAG,
    ),
)
def cancel_backup(request: ApiRequest) -> Reply:
    backups = services().backups
    snapshot = backups.cancel(request.environment_id(), request.route("id"), request.caller)
    view = SnapshotView.of(snapshot, backups.operation(snapshot))
    if snapshot.status.value == "Cancelled":
        return Reply(200, view)
    return Reply(202, view, {"Location": _location(snapshot.environment_id, snapshot.id), "Retry-After": "2"})


@bp.api(
    "environments/{env}/backups/{id}",
    "PATCH",
    RouteSpec(
        "Edit a backup's comment or pin it (keepUntil)",
        MANAGE,
        request_model=EditBackupBody,
        response_model=SnapshotView,
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
    snapshot = services().backups.edit(request.environment_id(), request.route("id"), request.caller, **changes)  # type: ignore[arg-type]
    return Reply(200, SnapshotView.of(snapshot))


@bp.api("environments/{env}/backups/{id}", "DELETE", RouteSpec("Delete a backup", MANAGE, success_status=204, tag=TAG))
def delete_backup(request: ApiRequest) -> Reply:
    services().backups.delete(request.environment_id(), request.route("id"), request.caller)
    return Reply(204)
