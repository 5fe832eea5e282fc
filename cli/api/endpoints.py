"""Every request the CLI makes: method, path as the OpenAPI names it, query, body and answer shapes.
tests/unit/test_cli_contract.py holds each one to the document the app serves at /api/openapi.json."""

from __future__ import annotations

from dataclasses import dataclass

from cli.api import shapes as s


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # below /api, with the OpenAPI's parameter names: /environments/{env}/backups/{id}
    answers: dict[int, type | None]  # success status -> the shape of its body (None: no body)
    body: type | None = None
    query: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.method} /api{self.path}"


ENV = "/environments/{env}"
BACKUP = ENV + "/backups/{id}"
PAGE = ("limit", "continuationToken")

LIST_ENVIRONMENTS = Endpoint("GET", "/environments", {200: s.Page_EnvironmentView_}, query=("deregistered",))
GET_ENVIRONMENT = Endpoint("GET", ENV, {200: s.EnvironmentView})
DEREGISTER_ENVIRONMENT = Endpoint("DELETE", ENV, {200: s.EnvironmentView})
STOP_ENVIRONMENT = Endpoint("POST", ENV + "/stop", {200: s.EnvironmentView})
RECOVERY_WINDOW = Endpoint("GET", ENV + "/recovery-window", {200: s.RecoveryWindowView})
START_ENVIRONMENT = Endpoint("POST", ENV + "/start", {200: s.EnvironmentView})
GET_NIGHT = Endpoint("GET", "/schedules/nights/{night}", {200: s.NightView})

LIST_BACKUPS = Endpoint("GET", ENV + "/backups", {200: s.Page_BackupView_}, query=PAGE)
CREATE_BACKUP = Endpoint("POST", ENV + "/backups", {202: s.BackupView}, body=s.CreateBackupBody)
GET_BACKUP = Endpoint("GET", BACKUP, {200: s.BackupView})
EDIT_BACKUP = Endpoint("PATCH", BACKUP, {200: s.BackupView}, body=s.EditBackupBody)
DELETE_BACKUP = Endpoint("DELETE", BACKUP, {204: None})
CANCEL_BACKUP = Endpoint("POST", BACKUP + "/cancel", {200: s.BackupView, 202: s.BackupView})
VERIFY_BACKUP = Endpoint("POST", BACKUP + "/verify", {202: s.OperationView})
RESTORE_BACKUP = Endpoint(
    "POST", BACKUP + "/restore", {202: s.OperationView, 200: s.RestorePlanView}, body=s.RestoreBody
)
RESTORE_TO_TIME = Endpoint(
    "POST", ENV + "/restore-to-time", {202: s.OperationView, 200: s.PointInTimePlanView}, body=s.RestoreToTimeBody
)

GET_RESTORE = Endpoint("GET", "/restores/{restoreId}", {200: s.OperationView})
CANCEL_RESTORE = Endpoint("POST", "/restores/{restoreId}/cancel", {200: s.OperationView, 202: s.OperationView})
GET_DRILL = Endpoint("GET", "/drills/{drillId}", {200: s.OperationView})
CANCEL_DRILL = Endpoint("POST", "/drills/{drillId}/cancel", {200: s.OperationView, 202: s.OperationView})

PREPARE_DOWNLOAD = Endpoint(
    "POST", BACKUP + "/download", {200: s.DownloadView, 202: s.DownloadView}, body=s.DownloadBody
)
GET_DOWNLOAD = Endpoint("GET", BACKUP + "/download", {200: s.DownloadView}, query=("dataType",))
CANCEL_DOWNLOAD = Endpoint(
    "POST", BACKUP + "/download/cancel", {200: s.DownloadView, 202: s.DownloadView}, query=("dataType",)
)
START_UPLOAD = Endpoint("POST", ENV + "/uploads", {201: s.UploadStarted}, body=s.StartUploadBody)
COMPLETE_UPLOAD = Endpoint("POST", ENV + "/uploads/{uploadId}/complete", {202: s.UploadAccepted})

WEBHOOK = "/namespaces/{ns}/webhooks/{webhookId}"
LIST_WEBHOOKS = Endpoint("GET", "/namespaces/{ns}/webhooks", {200: s.Page_WebhookView_})
PUT_WEBHOOK = Endpoint("PUT", WEBHOOK, {200: s.WebhookView, 201: s.WebhookView}, body=s.WebhookBody)
DELETE_WEBHOOK = Endpoint("DELETE", WEBHOOK, {204: None})
LIST_DELIVERIES = Endpoint("GET", WEBHOOK + "/deliveries", {200: s.Page_DeliveryView_}, query=("limit",))

ENDPOINTS = [value for value in list(globals().values()) if isinstance(value, Endpoint)]
