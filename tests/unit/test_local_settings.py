"""make run's local.settings.json: written from the sample when absent, an existing one left alone."""

import json
import shutil
from pathlib import Path

import pytest

from devhost.settings import read_local_settings
from shared.config import DEFAULT_SCHEDULES
from tools.azurite import connection_string
from tools.local_settings import ensure_local_settings

ROOT = Path(__file__).resolve().parents[2]


def test_written_from_the_sample_when_absent(tmp_path):
    shutil.copy(ROOT / "local.settings.sample.json", tmp_path)
    storage = connection_string(11000, 11001, 11002)
    result = ensure_local_settings(tmp_path, storage, 7123)
    assert result.written
    assert result.warnings == ()
    local = read_local_settings(tmp_path)  # as the development host reads it
    assert local.local_http_port == 7123
    assert local.values["BackupStorage"] == local.values["AzureWebJobsStorage"] == storage
    assert all(local.values[name] == schedule for name, schedule in DEFAULT_SCHEDULES.items())
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert local.values["APPBACKUPS_COPY_CONCURRENCY"] == sample["APPBACKUPS_COPY_CONCURRENCY"]


def test_an_existing_file_keeps_its_values_and_gains_only_the_schedules_of_timers_it_lacks(tmp_path):
    mine = {
        "IsEncrypted": False,
        "Values": {
            "BackupStorage": connection_string(1, 2, 3),
            "Mine": "yes",
            "APPBACKUPS_NIGHTLY_SCHEDULE": "0 0 3 * * *",
        },
    }
    (tmp_path / "local.settings.json").write_text(json.dumps(mine))
    result = ensure_local_settings(tmp_path, connection_string(11000, 11001, 11002), 7071)
    assert not result.written
    values = json.loads((tmp_path / "local.settings.json").read_text())["Values"]
    lacked = {name: schedule for name, schedule in DEFAULT_SCHEDULES.items() if name != "APPBACKUPS_NIGHTLY_SCHEDULE"}
    assert values == {**mine["Values"], **lacked}
    assert result.values["APPBACKUPS_CAPTURE_SCHEDULE"] == DEFAULT_SCHEDULES["APPBACKUPS_CAPTURE_SCHEDULE"]
    assert any("BackupStorage is not the Azurite make run uses" in warning for warning in result.warnings)
    assert any("lacked APPBACKUPS_WEEKLY_SCHEDULE" in warning for warning in result.warnings)
    again = ensure_local_settings(tmp_path, connection_string(1, 2, 3), 7071)
    assert not any("lacked" in warning for warning in again.warnings)


def test_a_missing_sample_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match=r"local\.settings\.sample\.json is missing"):
        ensure_local_settings(tmp_path, connection_string(1, 2, 3), 7071)
