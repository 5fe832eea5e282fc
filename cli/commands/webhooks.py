"""appbackups webhooks: add, list, remove, deliveries."""

from __future__ import annotations

import base64
import secrets
from typing import Annotated

import typer

from cli.api.shapes import WebhookBody
from cli.client import FAILED, ApiError
from cli.render.webhooks import deliveries_table, webhooks_table
from cli.session import current, emit, fail, out, show

group = typer.Typer(help="A namespace's webhooks: its events, signed, to your HTTPS endpoint.", no_args_is_help=True)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@group.command("add")
def webhooks_add(
    namespace: str,
    webhook_id: Annotated[str, typer.Argument(metavar="ID", help="A name: lower-case letters, digits, hyphens.")],
    endpoint: Annotated[str, typer.Argument(metavar="URL", help="Where the events are POSTed (https).")],
    events: Annotated[
        list[str] | None,
        typer.Option("--event", help="An event type, appbackups.backup.* for a kind, or * (the default); repeatable."),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option("--secret", help="whsec_… (Standard Webhooks); default: a new one, printed once."),
    ] = None,
    keep_secret: Annotated[
        bool, typer.Option("--keep-secret", help="Replacing a webhook: keep the secret it has.")
    ] = False,
    description: Annotated[str, typer.Option("--description")] = "",
) -> None:
    """Register a webhook of a namespace, or replace it (needs NamespaceAdmin)."""
    session = current()
    made = None if keep_secret or secret else new_secret()
    body: WebhookBody = {"url": endpoint, "events": list(events or ["*"]), "description": description}
    if secret or made:
        body["secret"] = secret or made
    try:
        document = session.api.put_webhook(namespace, webhook_id, body)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit({**document, **({"secret": made} if made else {})})
        return
    out.print(f"webhook {webhook_id} of {namespace}: {document['url']} ({', '.join(document['events'])})")
    if made:
        out.print(f"its signing secret (shown once, keep it with the receiver): {made}", soft_wrap=True)


@group.command("list")
def webhooks_list(namespace: str) -> None:
    """The webhooks of a namespace, each with its latest delivery (needs NamespaceAdmin)."""
    session = current()
    try:
        items = session.api.webhooks(namespace)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit(items)
    else:
        show(webhooks_table(items))


@group.command("remove")
def webhooks_remove(
    namespace: str,
    webhook_id: Annotated[str, typer.Argument(metavar="ID")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove a webhook; what it had not received yet is dropped."""
    if not yes and not typer.confirm(f"Remove webhook {webhook_id} of {namespace}?"):
        raise typer.Exit(FAILED)
    session = current()
    try:
        session.api.delete_webhook(namespace, webhook_id)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit({"removed": webhook_id, "namespace": namespace})
    else:
        out.print(f"removed webhook {webhook_id} of {namespace}")


@group.command("deliveries")
def webhooks_deliveries(
    namespace: str,
    webhook_id: Annotated[str, typer.Argument(metavar="ID")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
) -> None:
    """A webhook's recent deliveries, newest event first, with each attempt's status code, time and error."""
    session = current()
    try:
        items = session.api.deliveries(namespace, webhook_id, limit=limit)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit(items)
    else:
        show(deliveries_table(items))
