"""Routes: upload an archive straight to storage, then have it checked and added as a backup."""

from __future__ import annotations

from functions.http import ApiBlueprint, ApiRequest, Reply, RouteSpec, in_environment
from shared.bootstrap import services
from shared.contracts.backups import BackupView
from shared.contracts.uploads import StartUploadBody, UploadAccepted, UploadStarted
from shared.domain.access import Permission

bp = ApiBlueprint()

MANAGE = in_environment(Permission.MANAGE_BACKUPS)

TAG = "Uploads"


@bp.api(
    "environments/{env}/uploads",
    "POST",
    RouteSpec(
        "Start an upload: a write-only URL to put the archive at",
        MANAGE,
        request_model=StartUploadBody,
        response_model=UploadStarted,
        success_status=201,
        tag=TAG,
    ),
)
def start_upload(request: ApiRequest) -> Reply:
    environment_id = request.environment_id()
    wanted = request.body(StartUploadBody)
    session, url = services().uploads.start(
        environment_id, request.caller, file_name=wanted.file_name, comment=wanted.comment
    )
    complete = f"/api/environments/{environment_id}/uploads/{session.id}/complete"
    body = UploadStarted(upload_id=session.id, upload_url=url, expires_on=session.expires_on, complete_url=complete)
    return Reply(201, body)


@bp.api(
    "environments/{env}/uploads/{uploadId}/complete",
    "POST",
    RouteSpec(
        "Finish an upload: the archive is checked and ingested in the background (202)",
        MANAGE,
        response_model=UploadAccepted,
        success_status=202,
        tag=TAG,
    ),
)
def complete_upload(request: ApiRequest) -> Reply:
    environment_id = request.environment_id()
    backup, operation = services().uploads.complete(environment_id, request.route("uploadId"), request.caller)
    body = UploadAccepted(
        backup_id=backup.id, backup=BackupView.of(backup), operation_id=operation.id if operation else None
    )
    headers = {"Location": f"/api/environments/{environment_id}/backups/{backup.id}", "Retry-After": "5"}
    return Reply(202, body, headers)
