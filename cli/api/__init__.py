"""The API as the CLI uses it: one method per request, each through a declared Endpoint (cli/api/endpoints.py),
answers as Documents of the declared shapes (cli/api/shapes.py), problems as ApiError with an exit code."""

from __future__ import annotations

import string
import typing
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import quote

import requests

from cli.api import endpoints as e
from cli.api import shapes as s
from cli.api.endpoints import Endpoint
from cli.client import ApiError, Client, exit_code_for
from cli.documents import Document


class Api:
    def __init__(self, client: Client) -> None:
        self.client = client

    def call(
        self,
        endpoint: Endpoint,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        **path: str,
    ) -> Any:
        """The endpoint's answer as a Document of its declared shape (None for a body-less answer)."""
        if endpoint not in e.ENDPOINTS:
            raise TypeError(f"{endpoint} is not declared in cli/api/endpoints.py, so not held to the OpenAPI")
        query = {name: value for name, value in (query or {}).items() if value is not None}
        if set(query) - set(endpoint.query):
            raise TypeError(f"{endpoint} declares no query parameter {sorted(set(query) - set(endpoint.query))}")
        if body is not None and (endpoint.body is None or set(body) - set(typing.get_type_hints(endpoint.body))):
            raise TypeError(f"{endpoint} declares no body field {sorted(body)}")
        names = {name for _, name, _, _ in string.Formatter().parse(endpoint.path) if name}
        if names != set(path):
            raise TypeError(f"{endpoint} takes the path parameters {sorted(names)}, not {sorted(path)}")
        url = endpoint.path.format(**{name: quote(value, safe="") for name, value in path.items()})
        if endpoint.method == "POST" and body is None:
            body = {}
        response = self.client.request(endpoint.method, url, json=body, params=query or None)
        if response.status_code >= 400:
            raise problem(response)
        if response.status_code not in endpoint.answers:
            raise ApiError(f"{endpoint} answered {response.status_code}, an answer the CLI does not know")
        shape = endpoint.answers[response.status_code]
        return None if shape is None else Document(response.json(), shape)

    # -- environments

    def environments(self, *, deregistered: bool = False) -> list[s.EnvironmentView]:
        query = {"deregistered": "true" if deregistered else None}
        return cast(list[s.EnvironmentView], self.call(e.LIST_ENVIRONMENTS, query=query)["items"])

    def environment(self, env: str) -> s.EnvironmentView:
        return cast(s.EnvironmentView, self.call(e.GET_ENVIRONMENT, env=env))

    def deregister(self, env: str) -> s.EnvironmentView:
        return cast(s.EnvironmentView, self.call(e.DEREGISTER_ENVIRONMENT, env=env))

    def recovery_window(self, env: str) -> s.RecoveryWindowView:
        return cast(s.RecoveryWindowView, self.call(e.RECOVERY_WINDOW, env=env))

    def night(self, night: str) -> s.NightView:
        return cast(s.NightView, self.call(e.GET_NIGHT, night=night))

    def stop(self, env: str) -> s.EnvironmentView:
        return cast(s.EnvironmentView, self.call(e.STOP_ENVIRONMENT, env=env))

    def start(self, env: str) -> s.EnvironmentView:
        return cast(s.EnvironmentView, self.call(e.START_ENVIRONMENT, env=env))

    # -- backups

    def backups(self, env: str, *, limit: int | None = None, token: str | None = None) -> s.Page_BackupView_:
        query = {"limit": limit, "continuationToken": token}
        return cast(s.Page_BackupView_, self.call(e.LIST_BACKUPS, query=query, env=env))

    def all_backups(self, env: str) -> Iterator[s.BackupView]:
        """Every backup of ``env``, newest first, page by page."""
        token = None
        while True:
            page = self.backups(env, limit=100, token=token)
            yield from page["items"]
            token = page.get("continuationToken")
            if not token:
                return

    def create_backup(self, env: str, comment: str, *, at: str | None = None, reconcile: bool = False) -> s.BackupView:
        body = {"comment": comment} | ({"pointInTime": at} if at else {}) | ({"reconcile": True} if reconcile else {})
        return cast(s.BackupView, self.call(e.CREATE_BACKUP, body=body, env=env))

    def backup(self, env: str, backup_id: str) -> s.BackupView:
        return cast(s.BackupView, self.call(e.GET_BACKUP, env=env, id=backup_id))

    def edit_backup(self, env: str, backup_id: str, change: s.EditBackupBody) -> s.BackupView:
        return cast(s.BackupView, self.call(e.EDIT_BACKUP, body=dict(change), env=env, id=backup_id))

    def delete_backup(self, env: str, backup_id: str) -> None:
        self.call(e.DELETE_BACKUP, env=env, id=backup_id)

    def cancel_backup(self, env: str, backup_id: str) -> s.BackupView:
        return cast(s.BackupView, self.call(e.CANCEL_BACKUP, env=env, id=backup_id))

    def verify_backup(self, env: str, backup_id: str) -> s.OperationView:
        return cast(s.OperationView, self.call(e.VERIFY_BACKUP, env=env, id=backup_id))

    def restore_backup(
        self, env: str, backup_id: str, target: str, *, dry_run: bool
    ) -> s.OperationView | s.RestorePlanView:
        body = {"targetEnvironment": target, "dryRun": dry_run}
        return cast(s.OperationView | s.RestorePlanView, self.call(e.RESTORE_BACKUP, body=body, env=env, id=backup_id))

    def restore_to_time(
        self, env: str, at: str, target: str, *, dry_run: bool
    ) -> s.OperationView | s.PointInTimePlanView:
        body = {"pointInTime": at, "targetEnvironment": target, "dryRun": dry_run}
        return cast(s.OperationView | s.PointInTimePlanView, self.call(e.RESTORE_TO_TIME, body=body, env=env))

    # -- restores and drills

    def restore(self, restore_id: str) -> s.OperationView:
        return cast(s.OperationView, self.call(e.GET_RESTORE, restoreId=restore_id))

    def cancel_restore(self, restore_id: str) -> s.OperationView:
        return cast(s.OperationView, self.call(e.CANCEL_RESTORE, restoreId=restore_id))

    def drill(self, drill_id: str) -> s.OperationView:
        return cast(s.OperationView, self.call(e.GET_DRILL, drillId=drill_id))

    def cancel_drill(self, drill_id: str) -> s.OperationView:
        return cast(s.OperationView, self.call(e.CANCEL_DRILL, drillId=drill_id))

    # -- downloads and uploads

    def prepare_download(self, env: str, backup_id: str, data_type: s.DataType) -> s.DownloadView:
        body = {"dataType": data_type}
        return cast(s.DownloadView, self.call(e.PREPARE_DOWNLOAD, body=body, env=env, id=backup_id))

    def download(self, env: str, backup_id: str, data_type: s.DataType) -> s.DownloadView:
        query = {"dataType": data_type}
        return cast(s.DownloadView, self.call(e.GET_DOWNLOAD, query=query, env=env, id=backup_id))

    def cancel_download(self, env: str, backup_id: str, data_type: s.DataType) -> s.DownloadView:
        query = {"dataType": data_type}
        return cast(s.DownloadView, self.call(e.CANCEL_DOWNLOAD, query=query, env=env, id=backup_id))

    def start_upload(self, env: str, file_name: str, comment: str) -> s.UploadStarted:
        body = {"fileName": file_name, "comment": comment}
        return cast(s.UploadStarted, self.call(e.START_UPLOAD, body=body, env=env))

    def complete_upload(self, env: str, upload_id: str) -> s.UploadAccepted:
        return cast(s.UploadAccepted, self.call(e.COMPLETE_UPLOAD, env=env, uploadId=upload_id))

    # -- webhooks

    def webhooks(self, ns: str) -> list[s.WebhookView]:
        return cast(list[s.WebhookView], self.call(e.LIST_WEBHOOKS, ns=ns)["items"])

    def put_webhook(self, ns: str, webhook_id: str, webhook: s.WebhookBody) -> s.WebhookView:
        return cast(s.WebhookView, self.call(e.PUT_WEBHOOK, body=dict(webhook), ns=ns, webhookId=webhook_id))

    def delete_webhook(self, ns: str, webhook_id: str) -> None:
        self.call(e.DELETE_WEBHOOK, ns=ns, webhookId=webhook_id)

    def deliveries(self, ns: str, webhook_id: str, *, limit: int) -> list[s.DeliveryView]:
        page = self.call(e.LIST_DELIVERIES, query={"limit": limit}, ns=ns, webhookId=webhook_id)
        return cast(list[s.DeliveryView], page["items"])


def problem(response: requests.Response) -> ApiError:
    """An error answer as ApiError: the API's own words (RFC 9457 detail and field errors), its code."""
    try:
        found = response.json()
    except ValueError:
        found = None
    document = cast(s.Problem, Document(found if isinstance(found, dict) else {}, s.Problem))
    detail = document.get("detail") or response.reason or "request failed"
    errors = document.get("errors") or []
    if errors:
        detail += " (" + "; ".join(f"{error.get('field')}: {error.get('message')}" for error in errors) + ")"
    return ApiError(
        f"{response.status_code} {detail}",
        status=response.status_code,
        code=document.get("code"),
        exit_code=exit_code_for(response.status_code),
    )
