"""The command-line reference of the documentation site, docs/reference/cli.md (tools/cli_reference.py):
generated from the CLI's own click commands, current, and naming every command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main

from cli.app import app
from tools import cli_reference


def command_paths(command: Any, path: str) -> list[str]:
    children = getattr(command, "commands", {})
    found = [path]
    for name, child in children.items():
        if not child.hidden:
            found += command_paths(child, f"{path} {name}")
    return found


def test_the_page_holds_the_reference_generated_from_the_cli() -> None:
    written = cli_reference.page_reference(cli_reference.PAGE.read_text(encoding="utf-8"))
    assert written is not None, f"{cli_reference.PAGE} lost the markers around its generated reference"
    assert written == cli_reference.reference(), (
        f"{cli_reference.PAGE} is out of date: run python -m tools.cli_reference --write"
    )


def test_every_command_and_option_is_in_the_reference() -> None:
    generated = cli_reference.reference()
    paths = command_paths(typer.main.get_command(app), "appbackups")
    assert "appbackups backups create" in paths
    assert "appbackups webhooks deliveries" in paths
    for path in paths:
        assert f"`{path}` {{ #{path.replace(' ', '-')} }}" in generated, path
    restore = generated.split("### `appbackups restore`")[1].split("\n### ")[0]
    for option in ("--to", "--at", "--wait / --no-wait", "--dry-run", "-e, --env"):
        assert f"- `{option}" in restore, option


def test_write_replaces_only_the_reference_and_check_fails_on_a_stale_page(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    page = tmp_path / "cli.md"
    page.write_text(f"before\n{cli_reference.BEGIN}stale\n{cli_reference.END}\nafter\n", encoding="utf-8")
    monkeypatch.setattr(cli_reference, "PAGE", page)
    assert cli_reference.main(["--check"]) == 1
    assert cli_reference.main(["--write"]) == 0
    assert page.read_text(encoding="utf-8") == (
        f"before\n{cli_reference.BEGIN}{cli_reference.reference()}{cli_reference.END}\nafter\n"
    )
    assert cli_reference.main(["--check"]) == 0
    page.write_text("no markers\n", encoding="utf-8")
    assert cli_reference.main(["--write"]) == 1
