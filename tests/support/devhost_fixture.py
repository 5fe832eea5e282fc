"""Helpers for the devhost tests: a scratch copy of the fixture app with its own local.settings.json.

``local.settings.json`` is git-ignored, so the fixture app does not carry one; each test writes the
settings it needs next to a copy of ``tests/support/devhost_app``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.support.polling import wait_for

__all__ = ["REPO_ROOT", "make_app_dir", "read_records", "wait_for"]  # wait_for: the devhost tests import it from here

FIXTURE_APP = Path(__file__).resolve().parent / "devhost_app"
REPO_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "DEVHOST_FIXTURE_FROM_SETTINGS": "from local.settings.json",
    "DEVHOST_FIXTURE_SCHEDULE": "0 0 0 1 1 *",
    "DEVHOST_FIXTURE_QUEUE": "devhost-fixture-default",
}


def make_app_dir(target: Path, settings: dict[str, str] | None = None, host_json: dict[str, Any] | None = None) -> Path:
    """Copy the fixture app into ``target`` and write its local.settings.json (and host.json if given)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURE_APP / "function_app.py", target / "function_app.py")
    if host_json is None:
        shutil.copy(FIXTURE_APP / "host.json", target / "host.json")
    else:
        (target / "host.json").write_text(json.dumps(host_json), encoding="utf-8")
    values = {**DEFAULT_SETTINGS, **(settings or {})}
    (target / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    return target


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
