"""The settings table of the Configuration page, docs/reference/configuration.md (tools/settings_table.py):
generated from Settings and the settings read elsewhere, and naming nothing the code does not read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.config import STORAGE_CONNECTION, Settings
from tools import settings_table as table

ROOT = Path(__file__).resolve().parents[2]
# Fields read through a property in other units: the MB settings are read in bytes.
READ_AS = {"block_size_mb": "block_size", "upload_max_expanded_mb": "upload_expanded_limit"}


def _code_outside_config() -> str:
    paths = [
        ROOT / "function_app.py",
        *(ROOT / "functions").rglob("*.py"),
        *(ROOT / "shared").rglob("*.py"),
        *(ROOT / "devhost").rglob("*.py"),
    ]
    return "\n".join(path.read_text(encoding="utf-8") for path in paths if path != ROOT / "shared" / "config.py")


def test_the_configuration_page_table_is_the_one_generated_from_the_settings() -> None:
    documented = table.page_table(table.PAGE.read_text(encoding="utf-8"))
    assert documented is not None, f"{table.PAGE} lost the markers around its generated table"
    assert documented == table.settings_table(), f"{table.PAGE}'s settings table is out of date: run " + (
        "python -m tools.settings_table --write"
    )


def test_every_app_setting_is_a_row_with_its_default_and_meaning() -> None:
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in table.settings_table().splitlines()[2:]}
    for name, info in table.app_settings().items():
        assert f"`{name}`" in rows, name
        assert rows[f"`{name}`"].endswith(f" | {info.description} |"), name
    assert rows["`APPBACKUPS_COPY_CONCURRENCY`"] == "| `APPBACKUPS_COPY_CONCURRENCY` | 16 (at least 1) | " + (
        "parallel server-side copies |"
    )
    assert " | 1 (0 to 9) | " in rows["`APPBACKUPS_ARCHIVE_COMPRESSION`"]
    assert " | unset | " in rows["`WEBSITE_INSTANCE_ID`"], "shown as App Service leaves it, not as False"


def test_a_shown_default_for_a_setting_settings_lacks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(table.SHOWN_DEFAULTS, "APPBACKUPS_GONE", "unset")
    with pytest.raises(ValueError, match="APPBACKUPS_GONE"):
        table.settings_table()


def test_write_replaces_only_the_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    page.write_text(f"before\n{table.BEGIN}| stale |\n{table.END}\nafter\n", encoding="utf-8")
    monkeypatch.setattr(table, "PAGE", page)
    assert table.main(["--write"]) == 0
    assert page.read_text(encoding="utf-8") == f"before\n{table.BEGIN}{table.settings_table()}{table.END}\nafter\n"
    page.write_text("no markers\n", encoding="utf-8")
    assert table.main(["--write"]) == 1


def test_every_setting_the_table_documents_is_read_by_the_code() -> None:
    code = _code_outside_config()
    for name, info in Settings.model_fields.items():
        if not isinstance(info.validation_alias, str):
            continue
        attribute = READ_AS.get(name, name)
        assert hasattr(Settings, attribute) or attribute in Settings.model_fields, attribute
        assert re.search(rf"\.{attribute}\b", code), f"Settings.{attribute} is documented but nothing reads it"
    others = [name for other in (*table.OTHER_SETTINGS_FIRST, *table.OTHER_SETTINGS_LAST) for name in other.names]
    for name in others:
        if name.startswith(STORAGE_CONNECTION):
            continue  # read by StorageConnection.from_settings (tests/unit/test_settings.py)
        assert name in code, f"{name} is documented but nothing reads it"
