"""host.json and local.settings.json as the development host reads them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devhost.hostconfig import HostConfig, QueueOptions, load_host_config, parse_host_config
from devhost.settings import apply_settings, read_local_settings, remove_settings, resolve_references


def test_defaults_without_host_json(tmp_path: Path) -> None:
    config = load_host_config(tmp_path)
    assert config == HostConfig()
    assert config.route_prefix == "api"
    assert config.queues == QueueOptions(
        max_polling_interval=60.0,
        visibility_timeout=0.0,
        batch_size=16,
        new_batch_threshold=8,
        max_dequeue_count=5,
        message_encoding="base64",
    )
    assert config.function_timeout is None


def test_full_host_json(tmp_path: Path) -> None:
    document = {
        "version": "2.0",
        "functionTimeout": "00:10:00",
        "extensions": {
            "http": {"routePrefix": "/v1/"},
            "queues": {
                "maxPollingInterval": "00:00:02",
                "visibilityTimeout": "00:00:30",
                "batchSize": 8,
                "newBatchThreshold": 2,
                "maxDequeueCount": 3,
                "messageEncoding": "None",
            },
        },
    }
    (tmp_path / "host.json").write_text(json.dumps(document))
    config = load_host_config(tmp_path)
    assert config.route_prefix == "v1"
    assert config.function_timeout == 600
    assert config.queues == QueueOptions(2.0, 30.0, 8, 2, 3, "none")


def test_polling_interval_as_milliseconds_and_threshold_default_follows_batch_size() -> None:
    config = parse_host_config({"extensions": {"queues": {"maxPollingInterval": 250, "batchSize": 10}}})
    assert config.queues.max_polling_interval == 0.25
    assert config.queues.new_batch_threshold == 5


def test_keys_are_case_insensitive_like_dotnet_configuration() -> None:
    config = parse_host_config({"Extensions": {"HTTP": {"RoutePrefix": ""}, "Queues": {"MaxDequeueCount": 9}}})
    assert config.route_prefix == ""
    assert config.queues.max_dequeue_count == 9


def test_function_timeout_minus_one_means_unbounded() -> None:
    assert parse_host_config({"functionTimeout": "-1"}).function_timeout is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object"),
        ({"extensions": {"queues": {"batchSize": 0}}}, "batchSize must be between 1 and 32"),
        ({"extensions": {"queues": {"batchSize": 33}}}, "batchSize must be between 1 and 32"),
        ({"extensions": {"queues": {"batchSize": "many"}}}, "batchSize must be an integer"),
        ({"extensions": {"queues": {"maxDequeueCount": 0}}}, "maxDequeueCount must be at least 1"),
        ({"extensions": {"queues": {"newBatchThreshold": -1}}}, "newBatchThreshold must not be negative"),
        ({"extensions": {"queues": {"maxPollingInterval": 50}}}, "at least 100 milliseconds"),
        ({"extensions": {"queues": {"maxPollingInterval": "soon"}}}, "maxPollingInterval"),
        ({"extensions": {"queues": {"visibilityTimeout": 30}}}, "must be a 'hh:mm:ss' string"),
        ({"extensions": {"queues": {"messageEncoding": "utf-16"}}}, "'base64' or 'none'"),
        ({"extensions": {"http": {"routePrefix": 3}}}, "routePrefix must be a string"),
        ({"extensions": {"queues": []}}, "'queues' must be an object"),
        ({"functionTimeout": "5 minutes"}, "functionTimeout"),
        ({"functionTimeout": "00:00:00"}, "functionTimeout must be positive"),
    ],
)
def test_invalid_values_raise_value_error_naming_the_setting(document: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_host_config(document)


def test_a_broken_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text("{ not json")
    with pytest.raises(ValueError, match=r"host\.json is not valid JSON"):
        load_host_config(tmp_path)
    (tmp_path / "host.json").write_text('{"extensions": {"queues": {"batchSize": 99}}}')
    with pytest.raises(ValueError, match=r"host\.json: extensions\.queues\.batchSize"):
        load_host_config(tmp_path)


# -- local.settings.json


def test_local_settings_values_and_port(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"IsEncrypted": False, "Values": {"A": "1", "B": True, "C": 5}, "Host": {"LocalHttpPort": 7072}})
    )
    settings = read_local_settings(tmp_path)
    assert settings.values == {"A": "1", "B": "true", "C": "5"}
    assert settings.local_http_port == 7072


def test_missing_local_settings_is_empty(tmp_path: Path) -> None:
    assert read_local_settings(tmp_path).values == {}


def test_encrypted_or_broken_local_settings_are_refused(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(json.dumps({"IsEncrypted": True, "Values": {}}))
    with pytest.raises(ValueError, match="encrypted"):
        read_local_settings(tmp_path)
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": ["A"]}))
    with pytest.raises(ValueError, match="'Values' must be an object"):
        read_local_settings(tmp_path)


def test_apply_settings_does_not_override_the_environment() -> None:
    environ = {"KEEP": "from environment"}
    added = apply_settings({"KEEP": "from file", "NEW": "from file"}, environ)
    assert environ == {"KEEP": "from environment", "NEW": "from file"}
    assert added == ["NEW"]
    remove_settings(added, environ)
    assert environ == {"KEEP": "from environment"}


def test_resolve_references() -> None:
    environ = {"Queue": "jobs", "Env": "dev"}
    assert resolve_references("%Queue%-%Env%", environ) == "jobs-dev"
    assert resolve_references("no references", environ) == "no references"
    with pytest.raises(ValueError, match="'Missing'"):
        resolve_references("%Missing%", environ, what="queue name")
