"""Routes: prepare a backup for download, and get its status and URL."""

from __future__ import annotations

from functions.http import ApiBlueprint, ApiRequest, ChoiceQuery, Reply, RouteSpec, in_environment
from shared.bootstrap import services
from shared.contracts.downloads import DownloadBody, DownloadView
from shared.domain.access import Permission
from shared.domain.downloads import DataType

bp = ApiBlueprint()

MANAGE = in_environment(Permission.MANAGE_BACKUPS)

TAG = "Downloads"

DATA_TYPE = ChoiceQuery(
    name="dataType",
    description="Which download; by default the one requested last.",
    choices=tuple(member.value for member in DataType),
)


@bp.api(
    "environments/{env}/backups/{id}/download",
    "POST",
    RouteSpec(
        "Prepare a download (202 while preparing; 200 with the URL when one is ready)",
        MANAGE,
        request_model=DownloadBody,
        response_model=DownloadView,
        success_status=202,
        also_success=(200,),
        tag=TAG,
    ),
)
def request_download(request: ApiRequest) -> Reply:
    body = request.body(DownloadBody)
    environment_id, backup_id = request.environment_id(), request.route("id")
    download, _ = services().downloads.request(environment_id, backup_id, body.data_type, request.caller)
    location = f"/api/environments/{environment_id}/backups/{backup_id}/download?dataType={body.data_type.value}"
    if download.status == "Ready":
        return Reply(200, DownloadView.of(download), {"Location": location})
    return Reply(202, DownloadView.of(download), {"Location": location, "Retry-After": "5"})


@bp.api(
    "environments/{env}/backups/{id}/download",
    "GET",
    RouteSpec("Download status; the URL once Ready", MANAGE, response_model=DownloadView, query=(DATA_TYPE,), tag=TAG),
)
def get_download(request: ApiRequest) -> Reply:
    download = services().downloads.status(request.environment_id(), request.route("id"), _data_type(request))
    headers = {"Retry-After": "5"} if download.status == "Processing" else {}
    return Reply(200, DownloadView.of(download), headers)


@bp.api(
    "environments/{env}/backups/{id}/download/cancel",
    "POST",
    RouteSpec(
        "Cancel a download being prepared (202 while it stops; 200 once Cancelled; 409 unless Processing)",
        MANAGE,
        response_model=DownloadView,
        success_status=202,
        also_success=(200,),
        query=(DATA_TYPE,),
        tag=TAG,
    ),
)
def cancel_download(request: ApiRequest) -> Reply:
    environment_id, backup_id = request.environment_id(), request.route("id")
    download = services().downloads.cancel(environment_id, backup_id, _data_type(request), request.caller)
    if download.status == "Cancelled":
        return Reply(200, DownloadView.of(download))
    location = f"/api/environments/{environment_id}/backups/{backup_id}/download?dataType={download.data_type.value}"
    return Reply(202, DownloadView.of(download), {"Location": location, "Retry-After": "2"})


def _data_type(request: ApiRequest) -> DataType | None:
    raw = request.query_choice(DATA_TYPE)
    return DataType(raw) if raw else None
