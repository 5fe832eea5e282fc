"""``local.settings.json``: the file ``func start`` and ``python -m devhost`` read their app settings from.

``make run`` writes it from ``local.settings.sample.json`` when it is absent, with the connection of the
Azurite it uses and the timer schedules; an existing one is the developer's: only a timer's schedule it lacks
is added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from devhost.settings import LOCAL_SETTINGS_FILE, read_local_settings
from shared.config import DEFAULT_SCHEDULES, STORAGE_CONNECTION

SAMPLE_FILE = "local.settings.sample.json"
HOST_STORAGE = "AzureWebJobsStorage"


@dataclass(frozen=True)
class LocalSettingsFile:
    path: Path
    written: bool  # False: it was there already and was left as it is
    values: dict[str, str]
    warnings: tuple[str, ...] = ()


def ensure_local_settings(app_dir: Path, connection_string: str, api_port: int) -> LocalSettingsFile:
    """Write ``app_dir/local.settings.json`` from the sample when it is absent; read it either way."""
    path = app_dir / LOCAL_SETTINGS_FILE
    if path.exists():
        values = read_local_settings(app_dir).values
        warnings = tuple(
            f"{path.name}: {name} is not the Azurite make run uses ({_blob_endpoint(connection_string)}); "
            "the development host and devhost fire use the file's value"
            for name in (HOST_STORAGE, STORAGE_CONNECTION)
            if values.get(name) not in (None, connection_string)
        )
        new_timers = {name: schedule for name, schedule in DEFAULT_SCHEDULES.items() if not values.get(name)}
        if new_timers:  # a timer added since the file was written: the host cannot start without its schedule
            document = json.loads(path.read_text(encoding="utf-8"))
            document.setdefault("Values", {}).update(new_timers)
            path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            values = read_local_settings(app_dir).values
            warnings += (f"{path.name} lacked {', '.join(new_timers)}: added with the defaults",)
        if not values.get(STORAGE_CONNECTION):
            warnings += (f"{path.name} lacks {STORAGE_CONNECTION}: add it (see {SAMPLE_FILE})",)
        return LocalSettingsFile(path, written=False, values=values, warnings=warnings)

    sample = app_dir / SAMPLE_FILE
    try:
        document = json.loads(sample.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"cannot write {path.name}: {sample} is missing or not JSON ({error})") from error
    document["IsEncrypted"] = False
    values = dict(document.get("Values") or {})
    values.update(
        {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            HOST_STORAGE: connection_string,
            STORAGE_CONNECTION: connection_string,
            "APPBACKUPS_DEVELOPMENT_MODE": "true",
        }
    )
    for name, schedule in DEFAULT_SCHEDULES.items():
        values.setdefault(name, schedule)
    document["Values"] = values
    document["Host"] = {**(document.get("Host") or {}), "LocalHttpPort": api_port}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return LocalSettingsFile(path, written=True, values=read_local_settings(app_dir).values)


def _blob_endpoint(connection_string: str) -> str:
    parts = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    return parts.get("BlobEndpoint", "?")
