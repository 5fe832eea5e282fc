"""appbackups nights against the app's own handlers on the twins: a night's table at 80 columns, --json, --watch
until nothing waits or runs, and a bad date refused with the API's reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.bootstrap import install_services
from shared.domain.backups import Tier
from tests.support.cli_harness import CliHarness, FunctionsAdapter
from tests.support.core import CoreWorld

NIGHT = datetime(2026, 10, 22, 2, tzinfo=UTC)


@pytest.fixture
def world():
    world = CoreWorld(development_mode=True)
    install_services(world.services)
    yield world
    install_services(None)


def one_step(world: CoreWorld) -> None:
    """Between two looks of the CLI: one scheduled message is handled, and the backups' work runs."""
    scheduled = world.queues.get("scheduled-backups")
    if scheduled is not None and scheduled.sent:
        message = scheduled.pop().body
        world.services.scheduler.run(message["environmentId"], Tier(message["tier"]), NIGHT.date())
        return
    world.run()


@pytest.fixture
def apps(world):
    made = [world.app(documents=2), world.app(documents=2), world.app(state="Deploying")]
    world.services.scheduler.fan_out(Tier.NIGHTLY, NIGHT, spread=False)
    return made


def test_a_night_as_json_and_as_a_table_that_fits_80_columns(world, apps, monkeypatch, capsys):
    cli = CliHarness(monkeypatch, capsys, FunctionsAdapter(), width=80)
    listed = cli.run("--json", "nights", "2026-10-22")
    assert listed.exit_code == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert document["counts"] == {"notDue": 1, "waiting": 2, "running": 0, "done": 0, "failed": 0, "total": 3}
    shown = cli.run("nights", "2026-10-22")
    assert shown.exit_code == 0, shown.stderr
    assert [len(line) <= 80 for line in shown.lines] == [True] * len(shown.lines)
    assert shown.lines[0].startswith("night of 2026-10-22: 0 done, 0 failed, 0 running, 2 waiting, 1 not due")
    assert any("not due" in line and apps[2].environment_id in line for line in shown.lines)


def test_watch_looks_again_until_nothing_waits_or_runs(world, apps, monkeypatch, capsys):
    cli = CliHarness(monkeypatch, capsys, FunctionsAdapter(before=lambda: one_step(world)), width=100)
    watched = cli.run("nights", "2026-10-22", "--watch", "--interval", "0")
    assert watched.exit_code == 0, watched.stderr
    assert "2 done, 0 failed, 0 running, 0 waiting, 1 not due" in watched.lines[0]
    assert watched.stderr.count("night of 2026-10-22") >= 2  # it looked more than once
    done = [line for line in watched.lines if " done " in f" {line} "]
    assert len(done) == 2


def test_without_a_date_it_is_tonight_and_a_bad_date_is_refused(world, apps, monkeypatch, capsys):
    cli = CliHarness(monkeypatch, capsys, FunctionsAdapter(), width=80)
    tonight = cli.run("--json", "nights")
    assert tonight.exit_code == 0, tonight.stderr
    assert json.loads(tonight.stdout)["night"] == datetime.now(UTC).date().isoformat()
    bad = cli.run("nights", "22-10-2026")
    assert bad.exit_code == 2
    assert "YYYY-MM-DD" in bad.stderr
