"""appbackups: the command groups put together, and the global options every command takes.

Human output by default (tables, progress bars); --json (or --output json) prints the API's own JSON for
scripts. Exit codes: 0 done, 1 the operation failed, 2 bad usage or request, 3 not found, 4 conflict (state,
concurrency, namespace), 5 not signed in or not allowed, 6 service unreachable.

The options that say where the API is and how to print (--url, --key, --token, --principal, --config,
--json, --output) are accepted before the command (``appbackups --json backups list ENV``) and after it
(``appbackups backups list ENV --json``), as operators type them with ``az`` and ``kubectl``."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main

from cli.commands import backups, envs, nights, restores, transfers, webhooks
from cli.session import OutputFormat, begin, current, err

app = typer.Typer(help="appbackups: back up and restore app environments.", no_args_is_help=True)
app.add_typer(envs.group, name="envs")
app.add_typer(backups.group, name="backups")
app.add_typer(restores.group, name="restores")
app.add_typer(webhooks.group, name="webhooks")
app.command("nights")(nights.nights)
app.command("restore")(restores.restore)
app.command("download")(transfers.download)
app.command("upload")(transfers.upload)


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
    session = begin()
    for name, value in (
        ("url", url),
        ("key", key),
        ("token", token),
        ("principal", principal),
        ("config", config),
        ("as_json", as_json),
        ("output", output),
    ):
        session.given(name, value)


GLOBAL_OPTIONS = ("url", "key", "token", "principal", "config", "as_json", "output")
GLOBAL_PANEL = "Global options (before or after the command)"


def _remember(ctx: Any, param: Any, value: Any) -> Any:
    current().given(str(param.name), value)
    return value


def leaves(command: Any) -> list[Any]:
    children = getattr(command, "commands", None)
    if children is None:
        return [command]
    return [leaf for child in children.values() for leaf in leaves(child)]


def command() -> Any:
    """The click command of the app, with the global options added to every command, so that they can
    follow the command as well as precede it."""
    root = typer.main.get_command(app)
    shared = [param for param in root.params if param.name in GLOBAL_OPTIONS]
    for leaf in leaves(root):
        taken = {opt for param in leaf.params for opt in (*param.opts, *param.secondary_opts)}
        for param in shared:
            clash = taken & {*param.opts, *param.secondary_opts}
            if clash:
                raise RuntimeError(f"command {leaf.name!r} defines {', '.join(sorted(clash))}, a global option")
            clone = copy.copy(param)
            clone.expose_value = False
            clone.callback = _remember
            clone.rich_help_panel = GLOBAL_PANEL  # type: ignore[attr-defined]
            leaf.params.append(clone)
    return root


def main() -> None:
    try:
        command()(prog_name="appbackups")
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
