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


def test_an_existing_file_is_left_alone_with_a_warning_when_it_names_another_azurite(tmp_path):
    mine = {"IsEncrypted": False, "Values": {"BackupStorage": connection_string(1, 2, 3), "Mine": "yes"}}
    (tmp_path / "local.settings.json").write_text(json.dumps(mine))
    result = ensure_local_settings(tmp_path, connection_string(11000, 11001, 11002), 7071)
    assert not result.written
    assert json.loads((tmp_path / "local.settings.json").read_text()) == mine
    assert any("BackupStorage is not the Azurite make run uses" in warning for warning in result.warnings)
    assert any("lacks APPBACKUPS_NIGHTLY_SCHEDULE" in warning for warning in result.warnings)


def test_a_missing_sample_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match=r"local\.settings\.sample\.json is missing"):
        ensure_local_settings(tmp_path, connection_string(1, 2, 3), 7071)
