"""appbackups envs: list, show, window, stop, start, remove."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.client import FAILED, ApiError
from cli.render.environments import environment_view, environments_table, window_view
from cli.session import current, emit, fail, out, show

group = typer.Typer(help="Environments.", no_args_is_help=True)

Wide = Annotated[bool, typer.Option("--wide", "-w", help="Every column, however wide.")]


@group.command("list")
def envs_list(
    deregistered: Annotated[
        bool, typer.Option("--deregistered", help="Also the deregistered ones, whose backups stay until they expire.")
    ] = False,
    wide: Wide = False,
) -> None:
    """The environments you can see."""
    session = current()
    try:
        items = session.api.environments(deregistered=deregistered)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit(items)
    else:
        show(environments_table(items, wide=wide, width=out.width), wide=wide)


@group.command("show")
def envs_show(environment: str) -> None:
    """One environment, with its schedule state."""
    session = current()
    try:
        item = session.api.environment(environment)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit(item)
    else:
        show(environment_view(item))


@group.command("window")
def envs_window(environment: str) -> None:
    """The instants of an environment's past that can be restored now (appbackups restore ENV --at …), and how
    far the latest lags the clock."""
    session = current()
    try:
        window = session.api.recovery_window(environment)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit(window)
    else:
        show(window_view(window))


@group.command("remove")
def envs_remove(
    environment: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Deregister an environment whose app is gone (needs NamespaceAdmin). Its backups stay until they
    expire (list, download, restore them into another environment); its activity log stays."""
    if not yes and not typer.confirm(f"Deregister {environment}? Its backups stay until they expire."):
        raise typer.Exit(FAILED)
    session = current()
    try:
        item = session.api.deregister(environment)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit(item)
    else:
        out.print(
            f"{environment} is deregistered; its backups stay until they expire: appbackups backups list {environment}"
        )


@group.command("stop")
def envs_stop(environment: str) -> None:
    """Stop an environment (needs StopApps)."""
    _transition(environment, stop=True)


@group.command("start")
def envs_start(environment: str) -> None:
    """Start an environment (needs StopApps)."""
    _transition(environment, stop=False)


def _transition(environment: str, *, stop: bool) -> None:
    session = current()
    try:
        item = session.api.stop(environment) if stop else session.api.start(environment)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit(item)
    else:
        out.print(f"{environment} is {item['state']}")
