"""appbackups restore, and appbackups restores: show, cancel."""

from __future__ import annotations

from typing import Annotated, cast

import typer
from rich.markup import escape

from cli.api.shapes import OperationView, PointInTimePlanView, RestorePlanView
from cli.client import CONFLICT, FAILED, ApiError
from cli.commands.backups import At, Env, backup_path, instant
from cli.render.operations import error_line, operation_view, plan_view, time_plan_view
from cli.session import current, emit, err, fail, out, refuse, show
from cli.watch import ended, follow_operation, poll

group = typer.Typer(help="Restores.", no_args_is_help=True)

OUTCOMES = {"Finished": "FINISHED", "Failed": "FAILED", "Cancelled": "CANCELLED"}


def follow_restore(restore_id: str) -> OperationView:
    api = current().api
    return follow_operation("restore", lambda: api.restore(restore_id), lambda: api.cancel_restore(restore_id))


def restore_result(document: OperationView) -> None:
    """'restore ID: FINISHED' (scripts read the id from it), and why it failed; exit 1 unless Finished."""
    if current().as_json:
        emit(document)
    else:
        out.print(f"restore {document['id']}: {OUTCOMES.get(document['status'], document['status'])}")
        if document["error"]:
            out.print(error_line(document))
    if document["status"] in ("Failed", "Cancelled"):
        raise typer.Exit(FAILED)


def restore(
    backup: Annotated[str, typer.Argument(metavar="BACKUP|ENV", help="ENV/ID (or ID with --env); ENV with --at.")],
    to: Annotated[str, typer.Option("--to", help="The environment to restore into (same namespace, Stopped).")],
    env: Env = None,
    at: At = None,
    wait: Annotated[bool, typer.Option(help="Follow the restore until it ends.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show the plan and its checks; change nothing (exit 4 if it fails).")
    ] = False,
) -> None:
    """Restore a backup into an environment of its namespace (its pre-flight checks run first); with --at, the
    environment as it was at that instant (its backup of that instant is made first)."""
    session = current()
    if at and ("/" in backup or env):
        refuse("with --at, name the environment to restore (ENV), not a backup")
    past = instant(at) if at else None
    try:
        if past:
            answer = session.api.restore_to_time(backup, past, to, dry_run=dry_run)
        else:
            environment, backup_id = backup_path(backup, env)
            answer = session.api.restore_backup(environment, backup_id, to, dry_run=dry_run)
        if dry_run:
            show_plan(cast(PointInTimePlanView | RestorePlanView, answer), to_time=bool(past))
            return
        document = cast(OperationView, answer)
        for warning in document["warnings"]:
            err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
        if wait:
            document = follow_restore(document["id"])
    except ApiError as error:
        if error.code == "environment_not_stopped":
            err.print(f"[yellow]{to} is running: stop it first (appbackups envs stop {to}).[/yellow]")
        if error.code == "instant_outside_window":
            err.print(f"[yellow]see what can be restored: appbackups envs window {backup}[/yellow]")
        fail(error)
    if wait:
        restore_result(document)
    elif session.as_json:
        emit(document)
    else:
        out.print(
            f"restore {document['id']} started; follow it with: appbackups restores show {document['id']} --watch"
        )


def show_plan(plan: RestorePlanView | PointInTimePlanView, *, to_time: bool = False) -> None:
    if current().as_json:
        emit(plan)
    else:
        show(time_plan_view(cast(PointInTimePlanView, plan)) if to_time else plan_view(cast(RestorePlanView, plan)))
    if plan["outcome"] == "fail":
        raise typer.Exit(CONFLICT)


@group.command("show")
def restores_show(
    restore_id: str, watch: Annotated[bool, typer.Option(help="Follow it live until it ends.")] = False
) -> None:
    """A restore's status, steps and progress."""
    session = current()
    try:
        document = follow_restore(restore_id) if watch else session.api.restore(restore_id)
    except ApiError as error:
        fail(error)
    if watch:
        restore_result(document)
    elif session.as_json:
        emit(document)
    else:
        show(operation_view("restore", document))


@group.command("cancel")
def restores_cancel(
    restore_id: str, wait: Annotated[bool, typer.Option(help="Wait until it is Cancelled.")] = False
) -> None:
    """Cancel a restore. Before its database switch the target is left exactly as it was; after it,
    the API refuses (exit 4) and says why."""
    session = current()
    api = session.api
    try:
        document = api.cancel_restore(restore_id)
        if wait:
            document = poll(lambda: api.restore(restore_id), done=ended, what=f"restore {restore_id}")
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit(document)
    else:
        out.print(f"restore {restore_id}: {document['status']}" + (" (undoing)" if document["undoing"] else ""))
