"""App settings: ``local.settings.json`` into the environment, and ``%Name%`` references out of it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

LOCAL_SETTINGS_FILE = "local.settings.json"

_REFERENCE = re.compile(r"%([^%\s]+)%")


@dataclass(frozen=True)
class LocalSettings:
    """What ``local.settings.json`` holds that the development host uses."""

    values: dict[str, str] = field(default_factory=dict)
    local_http_port: int | None = None


def read_local_settings(app_dir: Path) -> LocalSettings:
    """Read ``local.settings.json`` from ``app_dir``; an absent file means no settings."""
    path = app_dir / LOCAL_SETTINGS_FILE
    if not path.is_file():
        return LocalSettings()
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise ValueError(f"{path} must hold a JSON object")
    if document.get("IsEncrypted") is True:
        raise ValueError(f"{path} is encrypted; the development host only reads plain settings")
    raw_values = document.get("Values") or {}
    if not isinstance(raw_values, dict):
        raise ValueError(f"{path}: 'Values' must be an object of name/value pairs")
    values = {str(name): _as_setting(value) for name, value in raw_values.items()}
    port = (document.get("Host") or {}).get("LocalHttpPort")
    return LocalSettings(values=values, local_http_port=int(port) if port is not None else None)


def _as_setting(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def apply_settings(values: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Copy ``values`` into the environment without overriding what is already set (as ``func start`` does).

    Returns the names that were added, so a caller can take them out again.
    """
    target = os.environ if environ is None else environ
    added = []
    for name, value in values.items():
        if name not in target:
            target[name] = value
            added.append(name)
    return added


def remove_settings(names: list[str], environ: MutableMapping[str, str] | None = None) -> None:
    """Undo :func:`apply_settings`."""
    target = os.environ if environ is None else environ
    for name in names:
        target.pop(name, None)


def resolve_references(text: str, environ: Mapping[str, str] | None = None, *, what: str = "value") -> str:
    """Replace each ``%Name%`` in ``text`` with the app setting ``Name`` (an environment variable).

    The Functions host resolves such references in trigger properties (schedule, queueName…). A missing
    setting is an error, as it is for the host.
    """
    source = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in source:
            raise ValueError(f"{what} '{text}' refers to app setting '{name}', which is not set")
        return source[name]

    return _REFERENCE.sub(replace, text)
