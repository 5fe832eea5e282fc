"""The CLI's point-in-time commands against the app's own handlers on the twins (tests/support/cli_harness.py):
`envs window`, `restore ENV --at … --to …` (dry run, wait, refusals) and `backups create ENV --at …`, each at
80 columns, with the exit codes scripts rely on."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from shared.bootstrap import install_services
from tests.support.cli_harness import CliHarness, FunctionsAdapter
from tests.support.core import CoreWorld, TwinApp


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
def source(world) -> TwinApp:
    """An archived app whose customers table had 2 rows until 02:10 UTC, then 3."""
    app = world.app(point_in_time=True, documents=1, customers=2)
    app.capture_files()
    world.clock.advance(600)
    app.add_customers("Grace")
    app.capture_files()
    app.archive()
    world.clock.advance(600)
    world.point_in_time.archived_until(app.server, world.clock.now)
    return app


def zulu(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_fits(result, width: int = 80) -> None:
    assert result.exit_code == 0, result.stderr
    assert [line for line in result.lines if len(line) > width] == []


def test_envs_window_shows_the_window_and_the_recovery_point(cli, world, source):
    shown = cli.run("envs", "window", source.environment_id)
    assert_fits(shown)
    assert re.search(r"earliest\s+\d{4}-\d\d-\d\d \d\d:\d\d", shown.stdout)
    assert re.search(r"latest\s+\d{4}-\d\d-\d\d \d\d:\d\d", shown.stdout)
    assert "recovery point  0 s behind the clock" in shown.stdout
    document = json.loads(cli.run("--json", "envs", "window", source.environment_id).stdout)
    assert datetime.fromisoformat(document["latest"]) == world.clock.now

    plain = world.app()
    refused = cli.run("envs", "window", plain.environment_id)
    assert refused.exit_code == 4
    assert "no point-in-time recovery" in " ".join(refused.stderr.split())


def test_restore_at_an_instant_dry_run_then_wait(cli, world, source):
    target = world.app(namespace=source.namespace, state="Stopped")
    before_grace = world.clock.now - timedelta(minutes=15)  # 02:05: two customers
    plan = cli.run(
        "restore", source.environment_id, "--at", zulu(before_grace), "--to", target.environment_id, "--dry-run"
    )
    assert_fits(plan)
    assert re.search(r"point_in_time\s+pass", plan.stdout)
    assert "plan: pass" in plan.stdout or "plan: warn" in plan.stdout
    assert world.services.environments.get(target.environment_id).state.value == "Stopped"

    restored = cli.run(
        "restore", source.environment_id, "--at", zulu(before_grace), "--to", target.environment_id, "--wait"
    )
    assert restored.exit_code == 0, restored.stderr
    assert re.match(r"restore \S+: FINISHED", restored.stdout)
    customers = target.contents()['public."sales$customer"']
    assert [row[1] for row in customers] == ["customer 0", "customer 1"]


def test_restore_at_an_instant_outside_the_window_exits_4_and_says_where_to_look(cli, world, source):
    target = world.app(namespace=source.namespace, state="Stopped")
    refused = cli.run("restore", source.environment_id, "--at", "2020-01-01T00:00:00Z", "--to", target.environment_id)
    assert refused.exit_code == 4
    said = " ".join(refused.stderr.split())  # wrapped at 80 columns
    assert "is outside the recovery window" in said
    assert f"appbackups envs window {source.environment_id}" in said


def test_at_must_be_an_instant_and_names_an_environment(cli, world, source):
    target = world.app(namespace=source.namespace, state="Stopped")
    bad = cli.run("restore", source.environment_id, "--at", "yesterday", "--to", target.environment_id)
    assert bad.exit_code == 2
    assert "not an ISO 8601 date and time" in " ".join(bad.stderr.split())
    backup_named = cli.run("restore", f"{source.environment_id}/latest", "--at", zulu(world.clock.now), "--to", "x-y-z")
    assert backup_named.exit_code == 2
    assert "name the environment" in " ".join(backup_named.stderr.split())


def test_backups_create_at_an_instant_makes_a_backup_of_the_past(cli, world, source):
    before_grace = world.clock.now - timedelta(minutes=15)
    made = cli.run("--json", "backups", "create", source.environment_id, "--at", zulu(before_grace), "--wait")
    assert made.exit_code == 0, made.stderr
    document = json.loads(made.stdout)
    assert (document["status"], document["tier"]) == ("Finished", "point-in-time")
    assert datetime.fromisoformat(document["pointInTime"]) == before_grace
    assert document["rowCount"] == 2 + 1  # two customers and one file document, as at the instant
    shown = cli.run("backups", "show", f"{source.environment_id}/{document['id']}")
    assert_fits(shown)
    assert re.search(r"as of\s+\d{4}-\d\d-\d\d \d\d:\d\d", shown.stdout)
