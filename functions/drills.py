"""Routes: restore drills — verify a backup by restoring it into a scratch database, and follow the drill."""

from __future__ import annotations

from functions.http import DRILL_STATUS, ApiBlueprint, ApiRequest, Reply, RouteSpec, in_environment
from shared.bootstrap import services
from shared.contracts.operations import OperationView
from shared.domain.access import Permission

bp = ApiBlueprint()

TAG = "Restore drills"


@bp.api(
    "environments/{env}/backups/{id}/verify",
    "POST",
    RouteSpec(
        "Verify a backup: a restore drill into a scratch database (answers 202; poll Location)",
        in_environment(Permission.MANAGE_BACKUPS),
        response_model=OperationView,
        success_status=202,
        tag=TAG,
    ),
)
def verify_backup(request: ApiRequest) -> Reply:
    operation = services().drills.request(request.environment_id(), request.route("id"), request.caller)
    return Reply(202, OperationView.of(operation), {"Location": f"/api/drills/{operation.id}", "Retry-After": "5"})


@bp.api(
    "drills/{drillId}",
    "GET",
    RouteSpec("Restore drill status, steps and checks", DRILL_STATUS, response_model=OperationView, tag=TAG),
)
def get_drill(request: ApiRequest) -> Reply:
    operation = services().drills.get(request.route("drillId"))
    headers = {"Retry-After": "5"} if operation.status.value == "Running" else {}
    return Reply(200, OperationView.of(operation), headers)


@bp.api(
    "drills/{drillId}/cancel",
    "POST",
    RouteSpec(
        "Cancel a restore drill (202 while it drops its scratch database; 200 once Cancelled)",
        DRILL_STATUS,
        response_model=OperationView,
        success_status=202,
        also_success=(200,),
        tag=TAG,
    ),
)
def cancel_drill(request: ApiRequest) -> Reply:
    operation = services().drills.cancel(request.route("drillId"), request.caller)
    if operation.status.value == "Cancelled":
        return Reply(200, OperationView.of(operation))
    return Reply(202, OperationView.of(operation), {"Location": f"/api/drills/{operation.id}", "Retry-After": "2"})
