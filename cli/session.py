"""One invocation's global options (given before or after the command), the API built from them on first use,
and how results and errors are printed."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

import requests
import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.measure import Measurement

from cli.api import Api
from cli.client import USAGE, ApiError, Client
from cli.config import ConfigError, load_config

# The HTTP transport: tests put the app's handlers behind it (a requests adapter), as httpx's transports do.
transport: Callable[[], requests.Session] = requests.Session

out = Console(markup=False)  # what the API says is printed as it is, brackets and all
err = Console(stderr=True)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


class Session:
    """The global options as given; a later one (after the command) wins over an earlier one."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}
        self.output = OutputFormat.TABLE
        self._api: Api | None = None

    @property
    def as_json(self) -> bool:
        return self.output is OutputFormat.JSON

    @property
    def api(self) -> Api:
        if self._api is None:
            try:
                settings = load_config(
                    url=self.options.get("url"),
                    function_key=self.options.get("key"),
                    token=self.options.get("token"),
                    principal=self.options.get("principal"),
                    config_file=self.options.get("config"),
                )
            except ConfigError as error:
                err.print(f"[red]{escape(str(error))}[/red]")
                raise typer.Exit(USAGE) from error
            self._api = Api(Client(settings, session=transport()))
        return self._api

    def given(self, name: str, value: Any) -> None:
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


_current = Session()


def begin() -> Session:
    """A new invocation (the root callback, which runs before the command's own options are read)."""
    global _current
    _current = Session()
    return _current


def current() -> Session:
    return _current


def show(renderable: RenderableType, *, wide: bool = False) -> None:
    """Print for a person, without the blanks rich pads lines with; ``wide``, as wide as it is (the terminal
    wraps what is wider, as with kubectl -o wide), else in the terminal's width."""
    width = out.width
    if wide:
        out.width = max(width, Measurement.get(out, out.options.update_width(100_000), renderable).maximum)
    try:
        with out.capture() as captured:
            out.print(renderable)
    finally:
        out.width = width
    out.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    out.file.flush()


def emit(document: Any) -> None:
    print(json.dumps(document, indent=2))


def fail(error: ApiError) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(str(error))}")
    raise typer.Exit(error.exit_code)


def refuse(message: str, exit_code: int = USAGE) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(exit_code)
