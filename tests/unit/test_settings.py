"""Settings (shared/config.py): each app setting is one field with its name, default, bounds and meaning;
from_environ reads them from one mapping, with errors that name the setting."""

from __future__ import annotations

import re

import pytest

from shared.config import STORAGE_CONNECTION, Settings, StorageConnection

CONNECTION = {STORAGE_CONNECTION: "UseDevelopmentStorage=true"}


def _app_settings() -> dict[str, str]:
    """Field name -> app setting name, for the fields read from app settings."""
    return {
        name: info.validation_alias
        for name, info in Settings.model_fields.items()
        if isinstance(info.validation_alias, str)
    }


def test_every_app_setting_field_has_a_default_and_a_meaning() -> None:
    fields = _app_settings()
    assert len(fields) >= 20, "the scan is broken: Settings has fewer app-setting fields than it did"
    for name in fields:
        info = Settings.model_fields[name]
        assert not info.is_required(), f"{name}: an app setting the core reads has a default"
        assert info.description, f"{name}: say what it means (it becomes the Configuration page's row)"
    assert len(set(fields.values())) == len(fields), "two fields read the same app setting"
    required = {name for name, info in Settings.model_fields.items() if info.is_required()}
    assert required == {"storage"}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (CONNECTION, StorageConnection(connection_string="UseDevelopmentStorage=true")),
        (
            {f"{STORAGE_CONNECTION}__accountName": "acct", f"{STORAGE_CONNECTION}__clientId": "id-1"},
            StorageConnection(
                blob_uri="https://acct.blob.core.windows.net",
                queue_uri="https://acct.queue.core.windows.net",
                table_uri="https://acct.table.core.windows.net",
                client_id="id-1",
            ),
        ),
        (
            {
                f"{STORAGE_CONNECTION}__blobServiceUri": "https://b",
                f"{STORAGE_CONNECTION}__queueServiceUri": "https://q",
                f"{STORAGE_CONNECTION}__tableServiceUri": "https://t",
            },
            StorageConnection(blob_uri="https://b", queue_uri="https://q", table_uri="https://t"),
        ),
    ],
)
def test_the_documented_storage_connection_forms_are_read(environ: dict[str, str], expected: StorageConnection) -> None:
    assert Settings.from_environ(environ).storage == expected


def test_without_a_storage_connection_the_error_says_what_to_set() -> None:
    with pytest.raises(ValueError, match=f"set {STORAGE_CONNECTION} to a connection string"):
        Settings.from_environ({})


def test_unset_and_blank_settings_take_their_defaults() -> None:
    blank = {name: " " for name in _app_settings().values()}
    for settings in (Settings.from_environ(CONNECTION), Settings.from_environ({**CONNECTION, **blank})):
        assert settings.copy_concurrency == 16
        assert settings.block_size == 8 * 1024 * 1024
        assert settings.upload_expanded_limit == 100 * 1024**3
        assert settings.operation_lease_seconds == 120
        assert settings.postgres_bin_dir is None
        assert settings.nightly_schedule == "0 0 2 * * *"
        assert settings.global_admins == frozenset()
        assert settings.crash_points == frozenset()
        assert (settings.development_mode, settings.easy_auth_enabled, settings.running_in_azure) == (False,) * 3


def test_settings_are_read_by_their_app_setting_names() -> None:
    settings = Settings.from_environ(
        {
            **CONNECTION,
            "APPBACKUPS_COPY_CONCURRENCY": " 4 ",
            "APPBACKUPS_BLOCK_SIZE_MB": "2",
            "APPBACKUPS_UPLOAD_MAX_EXPANDED_MB": "3",
            "APPBACKUPS_GLOBAL_ADMINS": "a, b,,",
            "APPBACKUPS_CRASH_POINTS": "backup.after_dump",
            "APPBACKUPS_DEVELOPMENT_MODE": "TRUE",
            "WEBSITE_AUTH_ENABLED": "maybe",  # a flag that is not true is false, as it always was
            "WEBSITE_INSTANCE_ID": "0f1e2d",
            "APPBACKUPS_POSTGRES_BIN_DIR": "/opt/pg/bin",
            "APPBACKUPS_NIGHTLY_SCHEDULE": "0 30 1 * * *",
            "DB_PASSWORD": "s3cret",
        }
    )
    assert settings.copy_concurrency == 4
    assert (settings.block_size, settings.upload_expanded_limit) == (2 * 1024 * 1024, 3 * 1024 * 1024)
    assert settings.global_admins == frozenset({"a", "b"})
    assert settings.crash_points == frozenset({"backup.after_dump"})
    assert (settings.development_mode, settings.easy_auth_enabled, settings.running_in_azure) == (True, False, True)
    assert settings.postgres_bin_dir == "/opt/pg/bin"
    assert settings.nightly_schedule == "0 30 1 * * *"
    assert settings.setting("DB_PASSWORD") == "s3cret"
    assert settings.setting("NOT_SET") is None
    assert "s3cret" not in repr(settings), "the environment (passwords) stays out of logs"


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("APPBACKUPS_COPY_CONCURRENCY", "0", "must be at least 1, got 0"),
        ("APPBACKUPS_COPY_CONCURRENCY", "many", "must be a whole number, got 'many'"),
        ("APPBACKUPS_BLOCK_SIZE_MB", "8.5", "must be a whole number, got '8.5'"),
        ("APPBACKUPS_OPERATION_LEASE_SECONDS", "1", "must be at least 2, got 1"),
        ("APPBACKUPS_PRUNE_GRACE_HOURS", "-1", "must be at least 0, got -1"),
        ("APPBACKUPS_ARCHIVE_COMPRESSION", "10", "must be at most 9, got 10"),
    ],
)  # fmt: skip
def test_a_bad_value_is_an_error_naming_the_app_setting(name: str, raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(f'app setting {name} {message}')}$"):
        Settings.from_environ({**CONNECTION, name: raw})


def test_the_lowest_allowed_values_are_accepted() -> None:
    settings = Settings.from_environ(
        {
            **CONNECTION,
            "APPBACKUPS_OPERATION_LEASE_SECONDS": "2",
            "APPBACKUPS_PRUNE_GRACE_HOURS": "0",
            "APPBACKUPS_ARCHIVE_COMPRESSION": "0",
        }
    )
    assert (settings.operation_lease_seconds, settings.prune_grace_hours, settings.archive_compression) == (2, 0, 0)


def test_every_bad_value_is_named_at_once() -> None:
    with pytest.raises(ValueError, match=r"APPBACKUPS_COPY_CONCURRENCY .*; app setting APPBACKUPS_UPLOAD_URL_MINUTES"):
        Settings.from_environ({**CONNECTION, "APPBACKUPS_COPY_CONCURRENCY": "0", "APPBACKUPS_UPLOAD_URL_MINUTES": "x"})


def test_from_environ_reads_the_mapping_it_is_given_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPBACKUPS_COPY_CONCURRENCY", "3")
    monkeypatch.setenv(STORAGE_CONNECTION, "UseDevelopmentStorage=true")
    assert Settings.from_environ(CONNECTION).copy_concurrency == 16
    assert Settings.from_environ().copy_concurrency == 3  # by default, the process environment


def test_names_are_case_sensitive_as_app_settings_are_on_linux() -> None:
    assert Settings.from_environ({**CONNECTION, "appbackups_copy_concurrency": "3"}).copy_concurrency == 16


def test_a_setting_that_shares_a_field_name_is_not_read_as_the_field() -> None:
    settings = Settings.from_environ({**CONNECTION, "storage": "{}", "copy_concurrency": "3"})
    assert settings.storage == StorageConnection(connection_string="UseDevelopmentStorage=true")
    assert settings.copy_concurrency == 16


def test_constructed_directly_settings_hold_what_they_are_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPBACKUPS_DEVELOPMENT_MODE", "true")
    storage = StorageConnection(connection_string="UseDevelopmentStorage=true")
    settings = Settings(storage=storage, easy_auth_enabled=True, global_admins=frozenset({"g"}))
    assert (settings.development_mode, settings.easy_auth_enabled, settings.global_admins) == (False, True, {"g"})
    assert settings.environ == {}
    with pytest.raises(ValueError, match="develop_mode"):
        Settings(storage=storage, develop_mode=True)  # type: ignore[call-arg]


def test_constructed_directly_the_given_values_win_over_the_given_environ() -> None:
    storage = StorageConnection(connection_string="UseDevelopmentStorage=true")
    environ = {"APPBACKUPS_COPY_CONCURRENCY": "3", "APPBACKUPS_BLOCK_SIZE_MB": "2"}
    settings = Settings(storage=storage, environ=environ, copy_concurrency=5)
    assert (settings.copy_concurrency, settings.block_size_mb) == (5, 2)
