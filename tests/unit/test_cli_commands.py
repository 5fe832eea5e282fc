"""The commands against the app's own handlers on the twins (tests/support/cli_harness.py): what a person reads
at 80 columns — short ids that differ though the backups were made the same second, one line per row, sizes and
times in words — and every short id taken back wherever the CLI takes a backup."""

from __future__ import annotations

import json
import re

import pytest

from shared.bootstrap import install_services
from tests.support.cli_harness import CliHarness, FunctionsAdapter
from tests.support.core import CoreWorld

LONG = "before the release of the new invoicing module, with the customer's data migrated twice over"


@pytest.fixture
def world():
    world = CoreWorld(development_mode=True)
    install_services(world.services)
    yield world
    install_services(None)


@pytest.fixture
def cli(world, monkeypatch, capsys):
    return CliHarness(monkeypatch, capsys, FunctionsAdapter(before=world.run), width=80)


@pytest.fixture
def env(world):
    return world.app(documents=4).environment_id


def backups_made(cli, env: str, comments: list[str]) -> list[dict]:
    for comment in comments:
        made = cli.run("backups", "create", env, "--comment", comment, "--wait")
        assert made.exit_code == 0, made.stderr
    listed = cli.run("--json", "backups", "list", env)
    return json.loads(listed.stdout)


def assert_fits(result, width: int = 80) -> None:
    assert result.exit_code == 0, result.stderr
    too_long = [line for line in result.lines if len(line) > width]
    assert too_long == []


def test_a_days_backups_have_short_ids_that_differ_one_line_each_at_80_columns(cli, env):
    items = backups_made(cli, env, ["first", LONG, "third", "", "fifth"])
    ids = [item["id"] for item in items]
    assert len({each[:7] for each in ids}) == 1  # made within seconds: their starts alike

    listed = cli.run("backups", "list", env)
    assert_fits(listed)
    header, *rows = listed.lines
    assert header.split() == ["id", "created", "tier", "status", "size", "comment"]
    assert len(rows) == len(items)  # one line per backup: nothing wrapped
    shown = [row.split()[0] for row in rows]
    assert len(set(shown)) == len(shown)
    assert [len(each) for each in shown] == [7] * len(shown)
    assert all(full.endswith(short) for full, short in zip(ids, shown, strict=True))
    assert any(row.endswith("…") and "before the release" in row for row in rows)  # cut, not wrapped
    assert all(re.search(r"\d+(\.\d)? (B|KiB|MiB)", row) for row in rows)

    wide = cli.run("backups", "list", env, "--wide")
    assert wide.exit_code == 0, wide.stderr
    assert all(full in wide.stdout for full in ids)


def test_a_short_id_names_its_backup_wherever_a_backup_is_taken(cli, env, world):
    items = backups_made(cli, env, ["one", "two"])
    full, short = items[-1]["id"], items[-1]["id"][-7:]

    assert json.loads(cli.run("--json", "backups", "show", f"{env}/{short}").stdout)["id"] == full
    assert json.loads(cli.run("--json", "backups", "show", short.upper(), "--env", env).stdout)["id"] == full
    assert json.loads(cli.run("--json", "backups", "show", f"{env}/{full[:30]}").stdout)["id"] == full  # a start
    edited = cli.run("--json", "backups", "edit", f"{env}/{short}", "--comment", "kept")
    assert json.loads(edited.stdout)["comment"] == "kept"

    ambiguous = cli.run("backups", "show", f"{env}/{full[:6]}")  # the shared start of both
    assert ambiguous.exit_code == 2
    assert "names 2 backups" in ambiguous.stderr
    assert "give more of the id" in ambiguous.stderr
    unknown = cli.run("backups", "show", f"{env}/fffffff")
    assert unknown.exit_code == 3
    assert "no backup id ends (or starts) with 'fffffff'" in unknown.stderr

    target = world.app(state="Stopped", namespace="ns")
    restored = cli.run("restore", f"{env}/{short}", "--to", target.environment_id, "--wait")
    assert restored.exit_code == 0, restored.stderr
    assert re.match(r"restore \S+: FINISHED", restored.stdout)


def test_show_formats_sizes_and_times_and_dumps_no_dicts(cli, env):
    (item,) = backups_made(cli, env, [LONG])
    shown = cli.run("backups", "show", f"{env}/latest")
    assert_fits(shown)
    text = shown.stdout
    assert not re.search(r"[{}\[\]]|': |\bNone\b|\bTrue\b", text)  # no dict, list or repr dumps
    assert item["id"] in text
    assert re.search(r"created\s+\d{4}-\d\d-\d\d \d\d:\d\d \S+.*(ago|in )", text)
    assert re.search(r"database\s+dump \d+(\.\d)? (B|KiB|MiB) \(\d+\.\d KiB on the server\)", text)
    assert re.search(r"files\s+4 documents, \d+(\.\d)? (B|KiB)", text)
    assert "kept until" in text
    assert item["databaseSize"] > 1024
    assert str(item["databaseSize"]) not in text.replace(",", "")  # not in bytes: in KiB


def test_a_restore_its_steps_and_the_environments_fit_80_columns(cli, env, world):
    (item,) = backups_made(cli, env, ["for the restore"])
    target = world.app(state="Stopped", namespace="ns")
    plan = cli.run("restore", f"{env}/latest", "--to", target.environment_id, "--dry-run")
    assert_fits(plan)
    assert "plan: pass" in plan.stdout or "plan: warn" in plan.stdout
    restored = cli.run("restore", f"{env}/{item['id'][-7:]}", "--to", target.environment_id, "--wait")
    restore_id = restored.stdout.split()[1].rstrip(":")
    steps = cli.run("restores", "show", restore_id)
    assert_fits(steps)
    assert f"restore {restore_id}: Finished" in steps.stdout
    assert re.search(r"ended \d{4}-\d\d-\d\d \d\d:\d\d \S+ after \d+ s", steps.stdout)

    environments = cli.run("envs", "list")
    assert_fits(environments)
    assert environments.lines[0].split() == ["environment", "state", "model", "name"]
    assert len(environments.lines) == 1 + 2
    shown = cli.run("envs", "show", env)
    assert_fits(shown)
    assert "next scheduled backup" in shown.stdout


def test_webhooks_and_their_deliveries_fit_80_columns(cli):
    added = cli.run("webhooks", "add", "ns", "ops", "https://hooks.example.com/appbackups/receiver/v1")
    assert added.exit_code == 0, added.stderr
    assert "whsec_" in added.stdout
    assert_fits(cli.run("webhooks", "list", "ns"))
    assert_fits(cli.run("webhooks", "deliveries", "ns", "ops"))
