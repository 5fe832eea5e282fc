"""Where the API is and how to call it: flags, then environment variables, then a config file."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:7071/api"
DEFAULT_CONFIG = Path("~/.config/appbackups/config.toml")


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class ClientConfig:
    url: str = DEFAULT_URL
    function_key: str | None = None
    token: str | None = None  # a Microsoft Entra access token for App Service Authentication
    principal: str | None = None  # development mode only: who to act as (X-MS-CLIENT-PRINCIPAL-ID)
    timeout: float = 60.0


def _file_values(path: Path | None) -> dict[str, object]:
    explicit = path is not None
    chosen = path or Path(os.environ.get("APPBACKUPS_CONFIG", str(DEFAULT_CONFIG)))
    chosen = chosen.expanduser()
    if not chosen.exists():
        if explicit:
            raise ConfigError(f"config file {chosen} does not exist")
        return {}
    try:
        return tomllib.loads(chosen.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError) as error:
        raise ConfigError(f"config file {chosen} cannot be read: {error}") from error


def load_config(
    *,
    url: str | None = None,
    function_key: str | None = None,
    token: str | None = None,
    principal: str | None = None,
    config_file: Path | None = None,
) -> ClientConfig:
    values = _file_values(config_file)

    def pick(flag: str | None, variable: str, key: str) -> str | None:
        if flag:
            return flag
        if os.environ.get(variable):
            return os.environ[variable]
        value = values.get(key)
        return str(value) if value is not None else None

    return ClientConfig(
        url=(pick(url, "APPBACKUPS_URL", "url") or DEFAULT_URL).rstrip("/"),
        function_key=pick(function_key, "APPBACKUPS_FUNCTION_KEY", "function_key"),
        token=pick(token, "APPBACKUPS_TOKEN", "token"),
        principal=pick(principal, "APPBACKUPS_PRINCIPAL", "principal"),
        timeout=float(values.get("timeout", 60.0)),  # type: ignore[arg-type]
    )
