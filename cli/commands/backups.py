"""appbackups backups: list, create, show, edit, cancel, delete, verify; and how a command names a backup."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from cli import ids
from cli.api.shapes import BackupView, EditBackupBody
from cli.client import FAILED, NOT_FOUND, USAGE, ApiError
from cli.render.backups import backup_view, backups_table, checks_table
from cli.session import current, emit, err, fail, out, refuse, show
from cli.watch import follow_backup, follow_operation

group = typer.Typer(help="Backups of an environment.", no_args_is_help=True)

Env = Annotated[str | None, typer.Option("--env", "-e", help="The backup's environment, if not in BACKUP.")]
At = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="An instant of the environment's recovery window (appbackups envs window ENV), ISO 8601: "
        "2026-12-07T10:41:00Z; UTC if no offset.",
        show_default=False,
    ),
]


def instant(value: str) -> str:
    """--at as the API takes it: ISO 8601 with its offset (UTC when none is given)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        refuse(f"--at {value!r} is not an ISO 8601 date and time (e.g. 2026-12-07T10:41:00Z)")
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def backup_path(reference: str, env: str | None) -> tuple[str, str]:
    """A backup is ENV/ID, or ID with --env. ID is a backup id, the end (or start) of one as the lists show
    it, or 'latest' (the newest Finished backup). Raises ApiError when the environment cannot be listed."""
    if "/" in reference:
        environment, wanted = reference.split("/", 1)
    elif env:
        environment, wanted = env, reference
    else:
        refuse("name the backup as ENV/ID, or give --env")
    api = current().api
    if wanted == "latest":
        for item in api.all_backups(environment):
            if item["status"] == "Finished":
                return environment, item["id"]
        refuse(f"{environment} has no finished backup", NOT_FOUND)
    if ids.is_full(wanted):
        return environment, wanted
    try:
        return environment, ids.resolve(wanted, (item["id"] for item in api.all_backups(environment)))
    except ids.Ambiguous as error:
        refuse(f"{error} (backups of {environment})", USAGE)
    except ids.NoSuchBackup as error:
        refuse(f"{error} among the backups of {environment}", NOT_FOUND)


def finish(document: BackupView) -> None:
    """A backup's outcome, as one row of the list; exit 1 if it Failed or was Cancelled."""
    session = current()
    if session.as_json:
        emit(document)
    else:
        show(backups_table([document], width=out.width))
        if document["statusMessage"]:
            out.print(document["statusMessage"])
        for warning in document.get("warnings") or []:
            err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if document["status"] in ("Failed", "Cancelled"):
        raise typer.Exit(FAILED)


@group.command("list")
def backups_list(
    environment: str,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    all_: Annotated[bool, typer.Option("--all", help="Every backup, all pages.")] = False,
    wide: Annotated[bool, typer.Option("--wide", "-w", help="Every column, with whole ids.")] = False,
) -> None:
    """Backups of an environment, newest first. The ids shown are their ends: as many hex digits as tell
    them apart (at least 7); any command takes them."""
    session = current()
    try:
        if all_:
            items = list(session.api.all_backups(environment))
        else:
            items = session.api.backups(environment, limit=limit)["items"]
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit(items)
    else:
        show(backups_table(items, wide=wide, width=out.width), wide=wide)


@group.command("create")
def backups_create(
    environment: str,
    comment: Annotated[str, typer.Option(help="A comment for the backup.")] = "",
    wait: Annotated[bool, typer.Option(help="Wait until it is Finished or Failed.")] = False,
    at: At = None,
    reconcile: Annotated[
        bool,
        typer.Option(
            "--reconcile",
            help="List the file store in full and reconcile the file documents with it (catching content "
            "changed under an old uuid), as is done weekly anyway; between, a backup reads only new file documents.",
        ),
    ] = False,
) -> None:
    """Create a backup (the environment must be Running or Stopped); with --at, a backup of the past: the
    database and file documents as they were at that instant."""
    api = current().api
    past = instant(at) if at else None
    try:
        document = api.create_backup(environment, comment, at=past, reconcile=reconcile)
        if wait:
            document = follow_backup(environment, document["id"])
    except ApiError as error:
        fail(error)
    finish(document)


@group.command("show")
def backups_show(backup: str, env: Env = None) -> None:
    """Every detail of one backup (ENV/ID, or ID with --env; ID may be short, or 'latest')."""
    session = current()
    try:
        environment, backup_id = backup_path(backup, env)
        document = session.api.backup(environment, backup_id)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit(document)
    else:
        show(backup_view(document))


@group.command("edit")
def backups_edit(
    backup: str,
    env: Env = None,
    comment: Annotated[str | None, typer.Option(help="A new comment.")] = None,
    keep_until: Annotated[
        str | None, typer.Option(help="Pin until this ISO date/time (UTC if no offset), or 'none' to unpin.")
    ] = None,
) -> None:
    """Change a backup's comment, or pin it (keep until a date)."""
    change: EditBackupBody = {}
    if comment is not None:
        change["comment"] = comment
    if keep_until is not None:
        if keep_until.lower() == "none":
            change["keepUntil"] = None
        else:
            try:
                moment = datetime.fromisoformat(keep_until)
            except ValueError:
                refuse(f"--keep-until {keep_until!r} is not an ISO date or time")
            change["keepUntil"] = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
    if not change:
        refuse("give --comment and/or --keep-until")
    api = current().api
    try:
        environment, backup_id = backup_path(backup, env)
        document = api.edit_backup(environment, backup_id, change)
    except ApiError as error:
        fail(error)
    finish(document)


@group.command("cancel")
def backups_cancel(
    backup: str,
    env: Env = None,
    wait: Annotated[bool, typer.Option(help="Wait until it is Cancelled.")] = False,
) -> None:
    """Cancel a backup being made (ENV/ID); its partial data is removed."""
    session = current()
    try:
        environment, backup_id = backup_path(backup, env)
        document = session.api.cancel_backup(environment, backup_id)
        if wait:
            document = follow_backup(environment, backup_id)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit(document)
    else:
        out.print(f"backup {backup_id}: {document['status']} {document['progress']}".rstrip())


@group.command("delete")
def backups_delete(
    backup: str,
    env: Env = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a backup."""
    session = current()
    try:
        environment, backup_id = backup_path(backup, env)
        if not yes and not typer.confirm(f"Delete backup {backup_id} of {environment}?"):
            raise typer.Exit(FAILED)
        session.api.delete_backup(environment, backup_id)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit({"deleted": backup_id, "environment": environment})
    else:
        out.print(f"deleted backup {backup_id} of {environment}")


@group.command("verify")
def backups_verify(
    backup: str,
    env: Env = None,
    wait: Annotated[bool, typer.Option(help="Follow the drill until it ends; exit 1 if verification failed.")] = False,
) -> None:
    """Verify a backup: a restore drill into a scratch database, then its checks (checksums, load, row counts,
    file references, assertions)."""
    session = current()
    api = session.api
    document: Any
    try:
        environment, backup_id = backup_path(backup, env)
        drill = api.verify_backup(environment, backup_id)
        if not wait:
            if session.as_json:
                emit(drill)
            else:
                out.print(f"restore drill {drill['id']} started; follow it with: appbackups backups verify … --wait")
            return
        follow_operation("drill", lambda: api.drill(drill["id"]), lambda: api.cancel_drill(drill["id"]))
        document = api.backup(environment, backup_id)
    except ApiError as error:
        fail(error)
    verification = document.get("verification")
    if session.as_json:
        emit(document)
    elif verification:
        show(checks_table(verification))
        seconds = verification["restoreSeconds"]
        out.print(
            f"backup {document['id']}: {verification['status']}"
            + (f"; the dump loaded in {seconds:.1f} s" if seconds is not None else "")
        )
    if not verification or verification["status"] != "Passed":
        raise typer.Exit(FAILED)
