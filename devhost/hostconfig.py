"""The parts of ``host.json`` the development host honours."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.schedules.timespan import parse_timespan

HOST_FILE = "host.json"
MAX_BATCH_SIZE = 32  # Azure Queue Storage returns at most 32 messages per request.


@dataclass(frozen=True)
class QueueOptions:
    """``extensions.queues`` with the Functions host's defaults (durations in seconds)."""

    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)
    function_timeout: float | None = None


def load_host_config(app_dir: Path) -> HostConfig:
    """Read ``host.json`` from ``app_dir``; an absent file gives the defaults."""
    path = app_dir / HOST_FILE
    if not path.is_file():
        return HostConfig()
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    try:
        return parse_host_config(document)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def parse_host_config(document: Any) -> HostConfig:
    """Build a :class:`HostConfig` from a parsed host.json (keys are case-insensitive, as in .NET config)."""
    if not isinstance(document, Mapping):
        raise ValueError("host.json must hold a JSON object")
    extensions = _section(document, "extensions")
    http = _section(extensions, "http")
    route_prefix = _get(http, "routePrefix", "api")
    if not isinstance(route_prefix, str):
        raise ValueError("extensions.http.routePrefix must be a string")
    return HostConfig(
        route_prefix=route_prefix.strip("/"),
        queues=_queue_options(_section(extensions, "queues")),
        function_timeout=_function_timeout(_get(document, "functionTimeout", None)),
    )


def _queue_options(section: Mapping[str, Any]) -> QueueOptions:
    defaults = QueueOptions()
    batch_size = _integer(section, "batchSize", defaults.batch_size)
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"extensions.queues.batchSize must be between 1 and {MAX_BATCH_SIZE}, got {batch_size}")
    threshold = _integer(section, "newBatchThreshold", batch_size // 2)
    if threshold < 0:
        raise ValueError(f"extensions.queues.newBatchThreshold must not be negative, got {threshold}")
    max_dequeue = _integer(section, "maxDequeueCount", defaults.max_dequeue_count)
    if max_dequeue < 1:
        raise ValueError(f"extensions.queues.maxDequeueCount must be at least 1, got {max_dequeue}")
    polling = _duration(section, "maxPollingInterval", defaults.max_polling_interval, numbers_are_ms=True)
    if polling < 0.1:
        raise ValueError("extensions.queues.maxPollingInterval must be at least 100 milliseconds")
    visibility = _duration(section, "visibilityTimeout", defaults.visibility_timeout, numbers_are_ms=False)
    if visibility < 0:
        raise ValueError("extensions.queues.visibilityTimeout must not be negative")
    encoding = _get(section, "messageEncoding", defaults.message_encoding)
    if not isinstance(encoding, str) or encoding.lower() not in ("base64", "none"):
        raise ValueError(f"extensions.queues.messageEncoding must be 'base64' or 'none', got {encoding!r}")
    return QueueOptions(
        max_polling_interval=polling,
        visibility_timeout=visibility,
        batch_size=batch_size,
        new_batch_threshold=threshold,
        max_dequeue_count=max_dequeue,
        message_encoding=encoding.lower(),
    )


def _function_timeout(value: Any) -> float | None:
    if value is None or value in ("-1", -1):
        return None  # "-1" means unbounded to the Functions host.
    try:
        seconds = parse_timespan(value)
    except ValueError as error:
        raise ValueError(f"functionTimeout: {error}") from error
    if seconds <= 0:
        raise ValueError("functionTimeout must be positive (or -1 for no limit)")
    return seconds


def _get(section: Mapping[str, Any], key: str, default: Any) -> Any:
    wanted = key.lower()
    for name, value in section.items():
        if isinstance(name, str) and name.lower() == wanted:
            return value
    return default


def _section(section: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _get(section, key, None)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"'{key}' must be an object")
    return value


def _integer(section: Mapping[str, Any], key: str, default: int) -> int:
    value = _get(section, key, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"extensions.queues.{key} must be an integer, got {value!r}")
    try:
        return int(value)
    except ValueError as error:
        raise ValueError(f"extensions.queues.{key} must be an integer, got {value!r}") from error


def _duration(section: Mapping[str, Any], key: str, default: float, *, numbers_are_ms: bool) -> float:
    value = _get(section, key, None)
    if value is None:
        return default
    if isinstance(value, bool):
        raise ValueError(f"extensions.queues.{key} must be a duration, got {value!r}")
    if isinstance(value, int | float):
        if not numbers_are_ms:
            raise ValueError(f"extensions.queues.{key} must be a 'hh:mm:ss' string, got {value!r}")
        return value / 1000.0
    try:
        return parse_timespan(value)
    except ValueError as error:
        raise ValueError(f"extensions.queues.{key}: {error}") from error
