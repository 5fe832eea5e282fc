"""The commands. Human output by default (tables, progress bars); --json (or --output json) prints the
API's own JSON for scripts. Exit codes: 0 done, 1 the operation failed, 2 bad usage or request, 3 not
found, 4 conflict (state, concurrency, namespace), 5 not signed in or not allowed, 6 service unreachable.

The options that say where the API is and how to print (--url, --key, --token, --principal, --config,
--json, --output) are accepted before the command (``appbackups --json backups list ENV``) and after it
(``appbackups backups list ENV --json``), as operators type them with ``az`` and ``kubectl``."""

from __future__ import annotations

import copy
import json
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from cli.client import CONFLICT, FAILED, NOT_FOUND, USAGE, ApiError, Client
from cli.config import ConfigError, load_config
from cli.transfers import download_file, upload_file

app = typer.Typer(help="appbackups: back up and restore app environments.", no_args_is_help=True)
envs = typer.Typer(help="Environments.", no_args_is_help=True)
backups = typer.Typer(help="Backups of an environment.", no_args_is_help=True)
restores = typer.Typer(help="Restores.", no_args_is_help=True)
webhooks = typer.Typer(help="A namespace's webhooks: its events, signed, to your HTTPS endpoint.", no_args_is_help=True)
app.add_typer(envs, name="envs")
app.add_typer(backups, name="backups")
app.add_typer(restores, name="restores")
app.add_typer(webhooks, name="webhooks")

out = Console()
err = Console(stderr=True)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


class State:
    """The global options as given (before or after the command); the client is built on first use."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}
        self.output = OutputFormat.TABLE
        self._client: Client | None = None

    @property
    def as_json(self) -> bool:
        return self.output is OutputFormat.JSON

    @property
    def client(self) -> Client:
        if self._client is None:
            try:
                settings = load_config(
                    url=self.options.get("url"),
                    function_key=self.options.get("key"),
                    token=self.options.get("token"),
                    principal=self.options.get("principal"),
                    config_file=self.options.get("config"),
                )
            except ConfigError as error:
                err.print(f"[red]{error}[/red]")
                raise typer.Exit(USAGE) from error
            self._client = Client(settings)
        return self._client

    def given(self, name: str, value: Any) -> None:
        """Record a global option; a later one (after the command) wins over an earlier one."""
        if value is None or value is False:
            return
        if name == "as_json":
            self.output = OutputFormat.JSON
        elif name == "output":
            self.output = OutputFormat(value)
        elif name == "config":
            self.options[name] = Path(value)
        else:
            self.options[name] = value


state = State()


@app.callback()
def configure(
    url: Annotated[str | None, typer.Option(help="API base URL (env APPBACKUPS_URL).", show_default=False)] = None,
    key: Annotated[str | None, typer.Option(help="Function key (env APPBACKUPS_FUNCTION_KEY).")] = None,
    token: Annotated[str | None, typer.Option(help="Entra access token (env APPBACKUPS_TOKEN).")] = None,
    principal: Annotated[
        str | None, typer.Option(help="Development mode: act as this principal id (env APPBACKUPS_PRINCIPAL).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Config file (default ~/.config/appbackups/config.toml).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for scripts (same as --output json).")] = False,
    output: Annotated[
        OutputFormat | None, typer.Option("--output", "-o", help="Output format: table (default) or json.")
    ] = None,
) -> None:
    for name, value in (
        ("url", url),
        ("key", key),
        ("token", token),
        ("principal", principal),
        ("config", config),
        ("as_json", as_json),
        ("output", output),
    ):
        state.given(name, value)


GLOBAL_OPTIONS = ("url", "key", "token", "principal", "config", "as_json", "output")
GLOBAL_PANEL = "Global options (before or after the command)"


def _remember(ctx: Any, param: Any, value: Any) -> Any:
    state.given(param.name, value)
    return value


def _leaves(command: Any) -> list[Any]:
    children = getattr(command, "commands", None)
    if children is None:
        return [command]
    return [leaf for child in children.values() for leaf in _leaves(child)]


def command() -> Any:
    """The click command of the app, with the global options added to every command, so that they can
    follow the command as well as precede it."""
    root = typer.main.get_command(app)
    shared = [param for param in root.params if param.name in GLOBAL_OPTIONS]
    for leaf in _leaves(root):
        taken = {opt for param in leaf.params for opt in (*param.opts, *param.secondary_opts)}
        for param in shared:
            clash = taken & {*param.opts, *param.secondary_opts}
            if clash:
                raise RuntimeError(f"command {leaf.name!r} defines {', '.join(sorted(clash))}, a global option")
            clone = copy.copy(param)
            clone.expose_value = False
            clone.callback = _remember
            clone.rich_help_panel = GLOBAL_PANEL
            leaf.params.append(clone)
    return root


def emit(document: Any) -> None:
    print(json.dumps(document, indent=2))


def fail(error: ApiError) -> None:
    err.print(f"[red]error:[/red] {error}")
    raise typer.Exit(error.exit_code)


def size(value: int | None) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return str(value)


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def files_text(files: dict[str, Any] | None) -> str:
    """A backup's or restore's file documents as the bars show them: '1,200 of 20,000 files, 3.1 MiB of
    51.0 MiB, about 1 min 20 s left'."""
    if not files or files.get("total") is None:
        return ""
    parts = [f"{files['done']:,} of {files['total']:,} files"]
    if files.get("bytesTotal") is not None:
        parts.append(f"{size(files['bytesDone'])} of {size(files['bytesTotal'])}")
    elif files.get("bytesDone"):
        parts.append(size(files["bytesDone"]))
    eta = files.get("etaSeconds")
    if eta is not None and files["done"] != files["total"]:
        parts.append(f"about {duration(eta)} left")
    return ", ".join(parts)


def load_text(progress: dict[str, Any]) -> str:
    """A step's own tables and bytes, as a restore's database load reports them: 'tables 3 of 12, 40.0 MiB
    of 121.0 MiB'. Empty when it has neither."""
    parts = []
    if progress.get("tablesTotal") is not None:
        parts.append(f"tables {progress.get('tablesDone') or 0:,} of {progress['tablesTotal']:,}")
    if progress.get("bytesTotal"):
        parts.append(f"{size(progress.get('bytesDone') or 0)} of {size(progress['bytesTotal'])}")
    return ", ".join(parts)


def _step_bar(step: dict[str, Any]) -> tuple[float, str]:
    """A step's bar: by its file documents where it has them, else by its own progress; then what it does,
    with its tables and bytes ('loading the database: tables 3 of 12, 40.0 MiB of 121.0 MiB')."""
    progress = step["progress"]
    files = progress.get("files")
    percent = (files or {}).get("percent") if files and files.get("done") else progress.get("percent")
    if step["status"] == "Finished":
        percent = 100
    doing = ": ".join(part for part in (progress.get("detail") or "", load_text(progress)) if part)
    detail = " ".join(part for part in (step["status"], files_text(files), doing) if part)
    return percent or 0, detail


def when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def backup_path(reference: str, env: str | None) -> tuple[str, str]:
    """A backup is ENV/ID, or ID with --env. ID may be 'latest' (the newest Finished backup)."""
    if "/" in reference:
        environment, backup_id = reference.split("/", 1)
    elif env:
        environment, backup_id = env, reference
    else:
        err.print("[red]error:[/red] name the backup as ENV/ID, or give --env")
        raise typer.Exit(USAGE)
    if backup_id == "latest":
        for item in state.client.pages(f"/environments/{environment}/backups"):
            if item["status"] == "Finished":
                return environment, item["id"]
        err.print(f"[red]error:[/red] {environment} has no finished backup")
        raise typer.Exit(NOT_FOUND)
    return environment, backup_id


def waiting_with_cancel(
    what: str, wait: Callable[[threading.Event], dict[str, Any]], cancel: Callable[[], dict[str, Any]]
) -> Any:
    """Run ``wait``; on Ctrl-C, offer to cancel the work (it goes on otherwise) and say where it stands.

    Ctrl-C also sets the event ``wait`` is given, which its polling checks: a KeyboardInterrupt raised
    while the interpreter runs a finalizer is printed and dropped, and the press would be lost."""
    interrupted = threading.Event()

    def on_interrupt(signum: int, frame: Any) -> None:
        interrupted.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        try:
            return wait(interrupted)
        finally:
            signal.signal(signal.SIGINT, previous)
    except KeyboardInterrupt:
        err.print()
        interactive = sys.stdin.isatty()
        if interactive and typer.confirm(f"Cancel the {what}?", default=False):
            try:
                document = cancel()
            except ApiError as error:
                fail(error)
            err.print(f"{what}: cancel requested; it undoes what it did ({document.get('status')})")
            raise typer.Exit(130) from None
        err.print(f"stopped watching; the {what} goes on")
        raise typer.Exit(130) from None


# -- environments ------------------------------------------------------------------------------


@envs.command("list")
def envs_list(
    deregistered: Annotated[
        bool, typer.Option("--deregistered", help="Also the deregistered ones, whose backups stay until they expire.")
    ] = False,
) -> None:
    """The environments you can see."""
    try:
        items = state.client.get("/environments", deregistered="true" if deregistered else None)["items"]
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit(items)
        return
    table = Table("environment", "namespace", "name", "state", "model", "deployment package")
    for item in items:
        table.add_row(
            item["id"],
            item["namespace"],
            item["displayName"],
            item["state"],
            item["modelVersion"] or "-",
            item["deploymentPackage"] or "-",
        )
    out.print(table)


@envs.command("show")
def envs_show(environment: str) -> None:
    """One environment, with its schedule state."""
    try:
        item = state.client.get(f"/environments/{environment}")
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit(item)
        return
    schedule = item.get("schedule") or {}
    last = schedule.get("lastScheduledBackup") or {}
    database = item["database"]
    last_backup = " ".join(str(part) for part in (last.get("night", "-"), last.get("tier"), last.get("status")) if part)
    rows = {
        "environment": item["id"],
        "namespace": item["namespace"],
        "name": item["displayName"],
        "state": item["state"] + (f" (restore {item['activeRestoreId']})" if item.get("activeRestoreId") else ""),
        "model version": item["modelVersion"] or "-",
        "deployment package": item["deploymentPackage"] or "-",
        "database": f"{database['user']}@{database['host']}:{database['port']}/{database['database']}",
        "file documents": f"{item['files']['container']}/{item['files']['prefix']}",
        "next scheduled backup": when(schedule.get("nextRun")),
        "last scheduled backup": last_backup,
    }
    table = Table(show_header=False)
    for name, value in rows.items():
        table.add_row(name, value)
    out.print(table)


def _transition(environment: str, action: str) -> None:
    try:
        item = state.client.post(f"/environments/{environment}/{action}").json()
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit(item)
    else:
        out.print(f"{environment} is {item['state']}")


@envs.command("remove")
def envs_remove(
    environment: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Deregister an environment whose app is gone (needs NamespaceAdmin). Its backups stay until they
    expire (list, download, restore them into another environment); its activity log stays."""
    if not yes and not typer.confirm(f"Deregister {environment}? Its backups stay until they expire."):
        raise typer.Exit(FAILED)
    try:
        item = state.client.request("DELETE", f"/environments/{environment}").json()
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit(item)
    else:
        out.print(
            f"{environment} is deregistered; its backups stay until they expire: appbackups backups list {environment}"
        )


@envs.command("stop")
def envs_stop(environment: str) -> None:
    """Stop an environment (needs StopApps)."""
    _transition(environment, "stop")


@envs.command("start")
def envs_start(environment: str) -> None:
    """Start an environment (needs StopApps)."""
    _transition(environment, "start")


# -- backups ----------------------------------------------------------------------------------


def _backup_table(items: list[dict[str, Any]]) -> Table:
    table = Table("id", "status", "verified", "tier", "created", "expires", "database", "files", "comment")
    for item in items:
        status = item["status"] + (" (warnings)" if item.get("warnings") else "")
        table.add_row(
            item["id"],
            status,
            _verified(item),
            item["tier"],
            when(item["createdOn"]),
            when(item.get("retainedUntil") or item["expiresOn"]),
            size(item.get("dumpSize")),
            f"{item['fileCount']} ({size(item.get('filesSize'))})" if item.get("fileCount") is not None else "-",
            item.get("comment") or "",
        )
    return table


def _verified(item: dict[str, Any]) -> str:
    verification = item.get("verification")
    if not verification:
        return "-"
    return {"Passed": "verified", "Failed": "verification failed", "Running": "verifying"}.get(
        verification["status"], verification["status"]
    )


@backups.command("list")
def backups_list(
    environment: str,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    all_: Annotated[bool, typer.Option("--all", help="Every backup, all pages.")] = False,
) -> None:
    """Backups of an environment, newest first."""
    try:
        if all_:
            items = list(state.client.pages(f"/environments/{environment}/backups"))
        else:
            items = state.client.get(f"/environments/{environment}/backups", limit=limit)["items"]
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit(items)
    else:
        out.print(_backup_table(items))


def _wait_for_backup(environment: str, backup_id: str) -> dict[str, Any]:
    path = f"/environments/{environment}/backups/{backup_id}"

    def follow(interrupted: threading.Event) -> dict[str, Any]:
        with err.status(f"backup {backup_id}: Processing") as status:

            def show(document: dict[str, Any]) -> None:
                files = files_text(document.get("fileProgress"))
                status.update(f"backup {backup_id}: {document['status']} {files or document.get('progress') or ''}")

            return state.client.wait(
                path, done=lambda d: d["status"] != "Processing", on_update=show, interrupted=interrupted
            )

    return waiting_with_cancel("backup", follow, lambda: state.client.post(f"{path}/cancel").json())


def _finish(document: dict[str, Any]) -> None:
    if state.as_json:
        emit(document)
    else:
        out.print(_backup_table([document]))
        if document.get("statusMessage"):
            out.print(document["statusMessage"])
        for warning in document.get("warnings") or []:
            err.print(f"[yellow]warning:[/yellow] {warning}")
    if document["status"] in ("Failed", "Cancelled"):
        raise typer.Exit(FAILED)


@backups.command("create")
def backups_create(
    environment: str,
    comment: Annotated[str, typer.Option(help="A comment for the backup.")] = "",
    wait: Annotated[bool, typer.Option(help="Wait until it is Finished or Failed.")] = False,
) -> None:
    """Create a backup (the environment must be Running or Stopped)."""
    try:
        document = state.client.post(f"/environments/{environment}/backups", {"comment": comment}).json()
        if wait:
            document = _wait_for_backup(environment, document["id"])
    except ApiError as error:
        fail(error)
    _finish(document)


@backups.command("show")
def backups_show(backup: str, env: Annotated[str | None, typer.Option("--env", "-e")] = None) -> None:
    """Every detail of one backup (ENV/ID, or ID with --env; ID may be 'latest')."""
    try:
        environment, backup_id = backup_path(backup, env)
        document = state.client.get(f"/environments/{environment}/backups/{backup_id}")
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit(document)
        return
    table = Table(show_header=False)
    for name, value in document.items():
        if isinstance(value, dict):
            value = value.get("name") or json.dumps(value)
        table.add_row(name, "-" if value in (None, "") else str(value))
    out.print(table)


@backups.command("edit")
def backups_edit(
    backup: str,
    env: Annotated[str | None, typer.Option("--env", "-e")] = None,
    comment: Annotated[str | None, typer.Option(help="A new comment.")] = None,
    keep_until: Annotated[
        str | None, typer.Option(help="Pin until this ISO date/time (UTC if no offset), or 'none' to unpin.")
    ] = None,
) -> None:
    """Change a backup's comment, or pin it (keep until a date)."""
    body: dict[str, Any] = {}
    if comment is not None:
        body["comment"] = comment
    if keep_until is not None:
        if keep_until.lower() == "none":
            body["keepUntil"] = None
        else:
            try:
                moment = datetime.fromisoformat(keep_until)
            except ValueError as error:
                err.print(f"[red]error:[/red] --keep-until {keep_until!r} is not an ISO date or time")
                raise typer.Exit(USAGE) from error
            body["keepUntil"] = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
    if not body:
        err.print("[red]error:[/red] give --comment and/or --keep-until")
        raise typer.Exit(USAGE)
    try:
        environment, backup_id = backup_path(backup, env)
        document = state.client.request("PATCH", f"/environments/{environment}/backups/{backup_id}", json=body).json()
    except ApiError as error:
        fail(error)
    _finish(document)


@backups.command("cancel")
def backups_cancel(
    backup: str,
    env: Annotated[str | None, typer.Option("--env", "-e")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until it is Cancelled.")] = False,
) -> None:
    """Cancel a backup being made (ENV/ID); its partial data is removed."""
    try:
        environment, backup_id = backup_path(backup, env)
        document = state.client.post(f"/environments/{environment}/backups/{backup_id}/cancel").json()
        if wait:
            document = state.client.wait(
                f"/environments/{environment}/backups/{backup_id}", done=lambda d: d["status"] != "Processing"
            )
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit(document)
    else:
        out.print(f"backup {backup_id}: {document['status']} {document.get('progress') or ''}".rstrip())


@backups.command("delete")
def backups_delete(
    backup: str,
    env: Annotated[str | None, typer.Option("--env", "-e")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a backup."""
    environment, backup_id = backup_path(backup, env)
    if not yes and not typer.confirm(f"Delete backup {backup_id} of {environment}?"):
        raise typer.Exit(FAILED)
    try:
        state.client.request("DELETE", f"/environments/{environment}/backups/{backup_id}")
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit({"deleted": backup_id, "environment": environment})
    else:
        out.print(f"deleted backup {backup_id} of {environment}")


# -- restores ---------------------------------------------------------------------------------


@backups.command("verify")
def backups_verify(
    backup: str,
    env: Annotated[str | None, typer.Option("--env", "-e")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the drill until it ends; exit 1 if verification failed.")] = False,
) -> None:
    """Verify a backup: a restore drill into a scratch database, then its checks (checksums, load, row counts,
    file references, assertions)."""
    try:
        environment, backup_id = backup_path(backup, env)
        document = state.client.post(f"/environments/{environment}/backups/{backup_id}/verify").json()
        if wait:
            _follow_operation(f"/drills/{document['id']}", "drill", f"/drills/{document['id']}/cancel")
            document = state.client.get(f"/environments/{environment}/backups/{backup_id}")
    except ApiError as error:
        fail(error)
    if not wait:
        if state.as_json:
            emit(document)
        else:
            out.print(f"restore drill {document['id']} started; follow it with: appbackups backups verify … --wait")
        return
    verification = document.get("verification") or {}
    if state.as_json:
        emit(document)
    else:
        out.print(_checks_table(verification))
        seconds = verification.get("restoreSeconds")
        out.print(
            f"backup {document['id']}: {verification.get('status')}"
            + (f"; the dump loaded in {seconds:.1f} s" if seconds is not None else "")
        )
    if verification.get("status") != "Passed":
        raise typer.Exit(FAILED)


def _checks_table(verification: dict[str, Any]) -> Table:
    table = Table("check", "status", "detail")
    for check in verification.get("checks") or []:
        table.add_row(check["name"], check["status"], check["detail"])
    return table


def _follow_operation(path: str, what: str, cancel_path: str) -> dict[str, Any]:
    """Live steps and progress of a long job until it ends."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"), console=err, transient=False
    ) as progress:
        tasks: dict[str, Any] = {}

        def show(document: dict[str, Any]) -> None:
            for step in document["steps"]:
                task = tasks.get(step["name"])
                if task is None:
                    task = tasks[step["name"]] = progress.add_task(step["title"], total=100, detail="")
                percent, detail = _step_bar(step)
                progress.update(task, completed=percent, detail=detail)

        return waiting_with_cancel(
            what,
            lambda interrupted: state.client.wait(path, done=_restore_ended, on_update=show, interrupted=interrupted),
            lambda: state.client.post(cancel_path).json(),
        )


def _follow_restore(restore_id: str) -> dict[str, Any]:
    """Live steps and progress until the restore ends."""
    return _follow_operation(f"/restores/{restore_id}", "restore", f"/restores/{restore_id}/cancel")


def _restore_ended(document: dict[str, Any]) -> bool:
    return document["status"] not in ("Running", "Stalled")


def _restore_result(document: dict[str, Any]) -> None:
    if state.as_json:
        emit(document)
    else:
        outcome = {"Finished": "FINISHED", "Failed": "FAILED", "Cancelled": "CANCELLED"}.get(
            document["status"], document["status"]
        )
        out.print(f"restore {document['id']}: {outcome}")
        if document.get("error"):
            out.print(f"{document['error']['step']}: {document['error']['message']}")
    if document["status"] in ("Failed", "Cancelled"):
        raise typer.Exit(FAILED)


@app.command("restore")
def restore(
    backup: str,
    to: Annotated[str, typer.Option("--to", help="The environment to restore into (same namespace, Stopped).")],
    env: Annotated[str | None, typer.Option("--env", "-e", help="The backup's environment, if not in BACKUP.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the restore until it ends.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show the plan and its checks; change nothing (exit 4 if it fails).")
    ] = False,
) -> None:
    """Restore a backup into an environment of its namespace (its pre-flight checks run first)."""
    try:
        environment, backup_id = backup_path(backup, env)
        response = state.client.post(
            f"/environments/{environment}/backups/{backup_id}/restore", {"targetEnvironment": to, "dryRun": dry_run}
        )
        document = response.json()
        if dry_run:
            _show_plan(document)
            return
        for warning in document.get("warnings", []):
            err.print(f"[yellow]warning:[/yellow] {warning}")
        if wait:
            document = _follow_restore(document["id"])
    except ApiError as error:
        if error.code == "environment_not_stopped":
            err.print(f"[yellow]{to} is running: stop it first (appbackups envs stop {to}).[/yellow]")
        fail(error)
    if wait:
        _restore_result(document)
    elif state.as_json:
        emit(document)
    else:
        out.print(
            f"restore {document['id']} started; follow it with: appbackups restores show {document['id']} --watch"
        )


def _show_plan(plan: dict[str, Any]) -> None:
    if state.as_json:
        emit(plan)
    else:
        table = Table("check", "result", "reason")
        for check in plan["checks"]:
            table.add_row(check["name"], check["status"], check["reason"])
        out.print(table)
        sizes = plan["sizes"]
        out.print(
            f"dump {size(sizes.get('dumpSize'))}, database at backup time {size(sizes.get('databaseSize'))}, "
            f"file documents to copy: {sizes.get('filesToCopy')} ({size(sizes.get('bytesToCopy'))})"
        )
        if plan.get("estimatedSeconds") is not None:
            out.print(f"estimated: {plan['estimatedSeconds']:.0f} s to load the database. {plan['estimateBasis']}")
        if plan["stopNeeded"]:
            out.print(f"stop it first: appbackups envs stop {plan['targetEnvironmentId']}")
        out.print(f"plan: {plan['outcome']} (nothing was changed)")
    if plan["outcome"] == "fail":
        raise typer.Exit(CONFLICT)


@restores.command("show")
def restores_show(
    restore_id: str, watch: Annotated[bool, typer.Option(help="Follow it live until it ends.")] = False
) -> None:
    """A restore's status, steps and progress."""
    try:
        document = _follow_restore(restore_id) if watch else state.client.get(f"/restores/{restore_id}")
    except ApiError as error:
        fail(error)
    if watch:
        _restore_result(document)
        return
    if state.as_json:
        emit(document)
        return
    table = Table("step", "status", "progress", "file documents", "attempts")
    for step in document["steps"]:
        percent = step["progress"].get("percent")
        shown = ", ".join(
            part for part in (f"{percent:.0f}%" if percent is not None else "", load_text(step["progress"])) if part
        )
        table.add_row(
            step["title"], step["status"], shown, files_text(step["progress"].get("files")), str(step["attempts"])
        )
    out.print(f"restore {document['id']}: {document['status']}")
    if document.get("stalledSince"):
        out.print(f"its worker stopped checking in at {when(document['stalledSince'])}; it resumes by itself")
    out.print(table)
    if document.get("error"):
        out.print(f"{document['error']['step']}: {document['error']['message']}")


@restores.command("cancel")
def restores_cancel(
    restore_id: str, wait: Annotated[bool, typer.Option(help="Wait until it is Cancelled.")] = False
) -> None:
    """Cancel a restore. Before its database switch the target is left exactly as it was; after it,
    the API refuses (exit 4) and says why."""
    try:
        document = state.client.post(f"/restores/{restore_id}/cancel").json()
        if wait:
            document = state.client.wait(f"/restores/{restore_id}", done=_restore_ended)
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit(document)
    else:
        out.print(f"restore {restore_id}: {document['status']}" + (" (undoing)" if document.get("undoing") else ""))


# -- transfers --------------------------------------------------------------------------------


def _bytes_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
    )


@app.command("download")
def download(
    backup: str,
    env: Annotated[str | None, typer.Option("--env", "-e")] = None,
    database_only: Annotated[bool, typer.Option("--database-only", help="The dump alone (.backup).")] = False,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="File to write (default: the archive's name).")
    ] = None,
) -> None:
    """Prepare a download (Full Snapshot .tar.gz, or the dump alone), wait for it, fetch it."""
    data_type = "database_only" if database_only else "files_and_database"
    try:
        environment, backup_id = backup_path(backup, env)
        path = f"/environments/{environment}/backups/{backup_id}/download"
        document = state.client.post(path, {"dataType": data_type}).json()
        expected = document.get("expectedSize")
        if expected is not None and not state.as_json:
            about = "about " if document.get("expectedSizeIsEstimate", True) else ""
            err.print(f"the archive is {about}{size(expected)}{' (an estimate)' if about else ''}")
        if document["status"] != "Ready":

            def follow(interrupted: threading.Event) -> dict[str, Any]:
                with err.status("preparing the archive") as status:
                    return state.client.wait(
                        f"{path}?dataType={data_type}",
                        done=lambda d: d["status"] != "Processing",
                        on_update=lambda d: status.update(
                            f"preparing the archive: {d.get('progress', {}).get('percent') or 0}%"
                        ),
                        interrupted=interrupted,
                    )

            document = waiting_with_cancel(
                "download", follow, lambda: state.client.post(f"{path}/cancel?dataType={data_type}").json()
            )
        if document["status"] != "Ready":
            message = (document.get("error") or {}).get("message") or document["status"]
            raise ApiError(f"the download is {document['status']}: {message}", exit_code=FAILED)
        target = file or Path(document["fileName"])
        with _bytes_progress() as progress:
            task = progress.add_task(f"downloading {target.name}", total=document.get("size"))
            download_file(
                document["url"],
                target,
                on_start=lambda total: progress.update(task, total=total),
                on_progress=lambda n: progress.advance(task, n),
            )
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit({**document, "path": str(target)})
    else:
        out.print(
            f"saved {target} ({size(target.stat().st_size)}); the link stays valid until {when(document['expiresOn'])}"
        )


@app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    env: Annotated[str, typer.Option("--env", "-e", help="The environment the backup is for.")],
    comment: Annotated[str, typer.Option(help="The new backup's comment (default: Uploaded FILE).")] = "",
    wait: Annotated[bool, typer.Option(help="Wait until the new backup is Finished or refused.")] = False,
) -> None:
    """Upload a Full Snapshot .tar.gz (or a dump) as a new backup of an environment."""
    try:
        started = state.client.post(f"/environments/{env}/uploads", {"fileName": file.name, "comment": comment}).json()
        with _bytes_progress() as progress:
            task = progress.add_task(f"uploading {file.name}", total=file.stat().st_size)
            upload_file(started["uploadUrl"], file, on_progress=lambda n: progress.advance(task, n))
        accepted = state.client.post(started["completeUrl"]).json()
        document = accepted["backup"]
        if wait:
            document = _wait_for_backup(env, accepted["backupId"])
    except ApiError as error:
        fail(error)
    if wait:
        _finish(document)
    elif state.as_json:
        emit(document)
    else:
        out.print(f"uploaded; backup {document['id']} is being checked: appbackups backups show {env}/{document['id']}")


# -- webhooks ---------------------------------------------------------------------------------


def _new_secret() -> str:
    import base64
    import secrets

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _last(delivery: dict[str, Any] | None) -> str:
    if not delivery:
        return "-"
    attempt = (delivery.get("attempts") or [{}])[-1]
    code = attempt.get("statusCode")
    return f"{delivery['status']} ({code if code is not None else attempt.get('error') or 'no answer'})"


@webhooks.command("add")
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
    made = None if keep_secret or secret else _new_secret()
    body: dict[str, Any] = {"url": endpoint, "events": list(events or ["*"]), "description": description}
    if secret or made:
        body["secret"] = secret or made
    try:
        document = state.client.request("PUT", f"/namespaces/{namespace}/webhooks/{webhook_id}", json=body).json()
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit({**document, **({"secret": made} if made else {})})
        return
    out.print(f"webhook {webhook_id} of {namespace}: {document['url']} ({', '.join(document['events'])})")
    if made:
        out.print(f"its signing secret (shown once, keep it with the receiver): {made}")


@webhooks.command("list")
def webhooks_list(namespace: str) -> None:
    """The webhooks of a namespace, each with its latest delivery (needs NamespaceAdmin)."""
    try:
        items = state.client.get(f"/namespaces/{namespace}/webhooks")["items"]
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit(items)
        return
    table = Table("id", "url", "events", "secret", "last delivery")
    for item in items:
        table.add_row(
            item["id"],
            item["url"],
            ", ".join(item["events"]),
            "set" if item["secretSet"] else "-",
            _last(item.get("lastDelivery")),
        )
    out.print(table)


@webhooks.command("remove")
def webhooks_remove(
    namespace: str,
    webhook_id: Annotated[str, typer.Argument(metavar="ID")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove a webhook; what it had not received yet is dropped."""
    if not yes and not typer.confirm(f"Remove webhook {webhook_id} of {namespace}?"):
        raise typer.Exit(FAILED)
    try:
        state.client.request("DELETE", f"/namespaces/{namespace}/webhooks/{webhook_id}")
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit({"removed": webhook_id, "namespace": namespace})
    else:
        out.print(f"removed webhook {webhook_id} of {namespace}")


@webhooks.command("deliveries")
def webhooks_deliveries(
    namespace: str,
    webhook_id: Annotated[str, typer.Argument(metavar="ID")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
) -> None:
    """A webhook's recent deliveries, newest event first, with each attempt's status code, time and error."""
    try:
        items = state.client.get(f"/namespaces/{namespace}/webhooks/{webhook_id}/deliveries", limit=limit)["items"]
    except ApiError as error:
        fail(error)
    if state.as_json:
        emit(items)
        return
    table = Table("event", "type", "status", "attempts", "last attempt", "next")
    for item in items:
        attempts = item["attempts"]
        last = attempts[-1] if attempts else {}
        code = last.get("statusCode")
        table.add_row(
            item["eventId"],
            item["eventType"].removeprefix("appbackups."),
            item["status"],
            str(len(attempts)),
            f"{when(last.get('on'))} {code if code is not None else ''} {last.get('error', '')}".strip()
            if last
            else "-",
            when(item.get("nextAttemptOn")),
        )
    out.print(table)


def main() -> None:
    try:
        command()(prog_name="appbackups")
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
