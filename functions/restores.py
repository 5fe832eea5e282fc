"""Routes: restore a backup, or an environment as it was at an instant, into an environment of its namespace,
and follow the restore."""

from __future__ import annotations

from functions.http import RESTORE, RESTORE_CANCEL, RESTORE_STATUS, ApiBlueprint, ApiRequest, Reply, RouteSpec
from shared.bootstrap import services
from shared.contracts.operations import OperationView, RestoreBody, RestorePlanView
from shared.contracts.pointintime import PointInTimePlanView, RestoreToTimeBody
from shared.domain.access import Permission

bp = ApiBlueprint()

TAG = "Restores"


@bp.api(
    "environments/{env}/backups/{id}/restore",
    "POST",
    RouteSpec(
        "Restore a backup (answers 202; poll Location). With dryRun, 200 with the plan and its checks",
        RESTORE,
        request_model=RestoreBody,
        response_model=OperationView,
        success_status=202,
        other_success=((200, RestorePlanView, "dryRun: the plan; nothing was changed"),),
        tag=TAG,
    ),
)
def restore_backup(request: ApiRequest) -> Reply:
    """The pre-flight checks run first, also for a real restore: a failed one refuses it (409, 422 or 403,
    naming the check in ``check``) before anything is stopped, backed up or written."""
    body = request.body(RestoreBody)
    app = services()

    def permissions(namespace: str) -> frozenset[Permission]:
        return app.access.permissions(request.caller, namespace)

    arguments = (request.environment_id(), request.route("id"), body.target_environment, request.caller)
    if body.dry_run:
        return Reply(200, RestorePlanView.of(app.restores.plan(*arguments, permissions=permissions)))
    operation = app.restores.request(*arguments, permissions=permissions)
    headers = {"Location": f"/api/restores/{operation.id}", "Retry-After": "5"}
    return Reply(202, OperationView.of(operation), headers)


@bp.api(
    "environments/{env}/restore-to-time",
    "POST",
    RouteSpec(
        "Restore the environment as it was at an instant into an environment of its namespace (answers 202; poll "
        "Location). With dryRun, 200 with the plan and its checks",
        RESTORE,
        request_model=RestoreToTimeBody,
        response_model=OperationView,
        success_status=202,
        other_success=((200, PointInTimePlanView, "dryRun: the plan; nothing was changed"),),
        tag=TAG,
    ),
)
def restore_to_time(request: ApiRequest) -> Reply:
    """A restore (the same checks, lock and steps) of the backup of the instant, which it makes first: 422 naming
    the recovery window when the instant is outside it, 409 when the environment has no point-in-time recovery."""
    body = request.body(RestoreToTimeBody)
    app = services()

    def permissions(namespace: str) -> frozenset[Permission]:
        return app.access.permissions(request.caller, namespace)

    arguments = (request.environment_id(), body.point_in_time, body.target_environment, request.caller)
    if body.dry_run:
        return Reply(200, PointInTimePlanView.of(app.restores.plan_to_time(*arguments, permissions=permissions)))
    operation = app.restores.request_to_time(*arguments, permissions=permissions)
    headers = {"Location": f"/api/restores/{operation.id}", "Retry-After": "5"}
    return Reply(202, OperationView.of(operation), headers)


@bp.api(
    "restores/{restoreId}",
    "GET",
    RouteSpec("Restore status, steps and progress", RESTORE_STATUS, response_model=OperationView, tag=TAG),
)
def get_restore(request: ApiRequest) -> Reply:
    operation = services().restores.get(request.route("restoreId"))
    headers = {"Retry-After": "5"} if operation.status.value == "Running" else {}
    return Reply(200, OperationView.of(operation), headers)


@bp.api(
    "restores/{restoreId}/cancel",
    "POST",
    RouteSpec(
        "Cancel a restore (202 while it undoes its changes; 200 once Cancelled; 409 after its COMMIT)",
        RESTORE_CANCEL,
        response_model=OperationView,
        success_status=202,
        also_success=(200,),
        tag=TAG,
    ),
)
def cancel_restore(request: ApiRequest) -> Reply:
    """Before the database switch, the target is left exactly as it was and unlocked; once the switch
    has begun, the answer is 409 with the reason (restore the pre-restore backup to go back)."""
    operation = services().restores.cancel(request.route("restoreId"), request.caller)
    if operation.status.value == "Cancelled":
        return Reply(200, OperationView.of(operation))
    return Reply(202, OperationView.of(operation), {"Location": f"/api/restores/{operation.id}", "Retry-After": "2"})
