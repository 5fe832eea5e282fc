"""Where the CLI finds the API: a flag beats an environment variable beats the config file."""

import pytest

from cli.client import CONFLICT, DENIED, FAILED, NOT_FOUND, UNAVAILABLE, USAGE, exit_code_for
from cli.config import DEFAULT_URL, ConfigError, load_config


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in ("APPBACKUPS_URL", "APPBACKUPS_FUNCTION_KEY", "APPBACKUPS_TOKEN", "APPBACKUPS_PRINCIPAL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APPBACKUPS_CONFIG", str(tmp_path / "none.toml"))


def test_defaults_to_the_development_host():
    config = load_config()
    assert (config.url, config.function_key, config.token, config.principal) == (DEFAULT_URL, None, None, None)


def test_flag_over_environment_over_file(monkeypatch, tmp_path):
    file = tmp_path / "config.toml"
    file.write_text('url = "https://file/api/"\nfunction_key = "k-file"\nprincipal = "p-file"\ntimeout = 5\n')
    from_file = load_config(config_file=file)
    assert (from_file.url, from_file.function_key, from_file.principal, from_file.timeout) == (
        "https://file/api",
        "k-file",
        "p-file",
        5.0,
    )
    monkeypatch.setenv("APPBACKUPS_FUNCTION_KEY", "k-env")
    monkeypatch.setenv("APPBACKUPS_CONFIG", str(file))
    assert load_config().function_key == "k-env"
    assert load_config(function_key="k-flag").function_key == "k-flag"
    assert load_config().url == "https://file/api"


def test_a_named_config_file_must_exist_and_parse(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(config_file=tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("url = ")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(config_file=broken)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, USAGE),
        (401, DENIED),
        (403, DENIED),
        (404, NOT_FOUND),
        (409, CONFLICT),
        (412, CONFLICT),
        (422, CONFLICT),
        (500, FAILED),
        (503, UNAVAILABLE),
    ],
)
def test_exit_codes_follow_the_status(status, code):
    assert exit_code_for(status) == code
