"""A timer trigger running on its schedule inside a DevHost (tests/support/devhost_app)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from devhost import DevHost
from tests.support.devhost_fixture import make_app_dir, read_records
from tests.support.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def test_timer_runs_on_its_schedule_from_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    records = tmp_path / "records.jsonl"
    # The fixture's schedule is %DEVHOST_FIXTURE_SCHEDULE%; local.settings.json says yearly, the environment wins.
    monkeypatch.setenv("DEVHOST_FIXTURE_SCHEDULE", "*/1 * * * * *")
    monkeypatch.setenv("DEVHOST_FIXTURE_RECORD", str(records))
    app_dir = make_app_dir(tmp_path / "app")
    with caplog.at_level(logging.INFO, logger="devhost"):
        host = DevHost(app_dir, port=0, queues=False).start()
        try:
            ticks = wait_for(lambda: len(read_records(records)) >= 3 and read_records(records), timeout=10)
        finally:
            host.stop(timeout=5)
    assert [tick["past_due"] for tick in ticks[:3]] == [False, False, False]
    gaps = [ticks[i + 1]["at"] - ticks[i]["at"] for i in range(2)]
    assert all(0.5 < gap < 1.5 for gap in gaps), gaps
    assert "Executed 'Functions.tick' (Succeeded, Trigger=timerTrigger" in caplog.text
    assert "tick: timerTrigger schedule '%DEVHOST_FIXTURE_SCHEDULE%'" in caplog.text


def test_timers_disabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = tmp_path / "records.jsonl"
    monkeypatch.setenv("DEVHOST_FIXTURE_SCHEDULE", "*/1 * * * * *")
    monkeypatch.setenv("DEVHOST_FIXTURE_RECORD", str(records))
    host = DevHost(make_app_dir(tmp_path / "app"), port=0, timers=False, queues=False).start()
    try:
        assert not [thread for thread in threading.enumerate() if thread.name.startswith("devhost-timer-")]
        result = host.fire("tick")  # still runnable by hand
        assert result.succeeded
    finally:
        host.stop(timeout=5)
    assert len(read_records(records)) == 1


def test_an_invalid_schedule_stops_the_host_from_starting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVHOST_FIXTURE_SCHEDULE", "every minute")
    host = DevHost(make_app_dir(tmp_path / "app"), port=0, queues=False)
    with pytest.raises(ValueError, match="timer function 'tick': 'every minute' is not a valid timer schedule"):
        host.start()
