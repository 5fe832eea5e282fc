"""``python -m devhost`` in a subprocess: fire, list and serve (with a graceful stop)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.devhost_fixture import REPO_ROOT, make_app_dir, read_records
from tests.support.polling import wait_for
from tools.azurite import free_port, port_open

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


def devhost(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devhost", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def records(tmp_path: Path) -> Path:
    return tmp_path / "records.jsonl"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return make_app_dir(tmp_path / "app")


@pytest.fixture
def env(records: Path) -> dict[str, str]:
    return {**os.environ, "DEVHOST_FIXTURE_RECORD": str(records)}


def test_fire_runs_a_timer_once(app_dir: Path, env: dict[str, str], records: Path) -> None:
    result = devhost("fire", "tick", "--app-dir", str(app_dir), env=env)
    assert result.returncode == 0, result.stderr
    assert [entry["fn"] for entry in read_records(records)] == ["tick"]
    assert read_records(records)[0]["past_due"] is False
    assert "Executed 'Functions.tick' (Succeeded, Trigger=timerTrigger" in result.stderr


def test_fire_exit_code_is_1_when_the_function_fails(app_dir: Path, env: dict[str, str], records: Path) -> None:
    result = devhost("fire", "tick", "--app-dir", str(app_dir), env={**env, "DEVHOST_FIXTURE_TICK_FAIL": "1"})
    assert result.returncode == 1
    assert "Executed 'Functions.tick' (Failed, ValueError" in result.stderr
    assert "tick told to fail" in result.stderr  # the traceback is logged
    assert len(read_records(records)) == 1


def test_fire_a_queue_function_with_input(app_dir: Path, env: dict[str, str], records: Path) -> None:
    ok = devhost("fire", "work", "--app-dir", str(app_dir), "--input", "hello queue", env=env)
    assert ok.returncode == 0, ok.stderr
    assert read_records(records)[0]["body"] == "hello queue"
    assert read_records(records)[0]["dequeue_count"] == 1
    failing = devhost("fire", "work", "--app-dir", str(app_dir), "--input", "fail", env=env)
    assert failing.returncode == 1


def test_fire_exit_code_is_2_for_an_unknown_or_http_function(app_dir: Path, env: dict[str, str], records: Path) -> None:
    unknown = devhost("fire", "no_such_function", "--app-dir", str(app_dir), env=env)
    assert unknown.returncode == 2
    assert "no function named 'no_such_function'" in unknown.stderr
    http = devhost("fire", "echo", "--app-dir", str(app_dir), env=env)
    assert http.returncode == 2
    assert not records.exists()


def test_fire_with_a_broken_app_reference_exits_1(app_dir: Path, env: dict[str, str]) -> None:
    result = devhost("fire", "tick", "--app-dir", str(app_dir), "--app", "function_app:nothing", env=env)
    assert result.returncode == 1
    assert "has no attribute 'nothing'" in result.stderr


def test_list_prints_functions_and_triggers(app_dir: Path, env: dict[str, str]) -> None:
    result = devhost("list", "--app-dir", str(app_dir), env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "item_by_id: httpTrigger [GET] /api/items/{id}" in lines
    assert "boom: httpTrigger [ANY] /api/boom" in lines
    assert any(line.startswith("tick: timerTrigger schedule '%DEVHOST_FIXTURE_SCHEDULE%', next ") for line in lines)
    assert "work: queueTrigger queue '%DEVHOST_FIXTURE_QUEUE%' (connection DevhostFixtureStorage)" in lines


def test_serve_answers_then_stops_gracefully_on_sigterm(app_dir: Path, env: dict[str, str]) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "serve", "--app-dir", str(app_dir), "--port", str(port), "--no-queues"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: port_open(port) or process.poll() is not None, timeout=20)
        assert process.poll() is None, process.communicate()[1]
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/api/items/3", timeout=10).text == "item 3"

        slow: dict[str, requests.Response] = {}
        thread = threading.Thread(
            target=lambda: slow.setdefault("response", requests.get(f"{base}/api/slow?seconds=2", timeout=10))
        )
        thread.start()
        time.sleep(0.5)  # the slow request is in flight
        process.send_signal(signal.SIGTERM)
        thread.join(timeout=10)
        assert slow["response"].status_code == 200
        assert slow["response"].text == "done"  # the in-flight invocation finished
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    stderr = process.stderr.read() if process.stderr else ""
    assert f"item_by_id: [GET] http://127.0.0.1:{port}/api/items/{{id}}" in stderr
    assert f"echo: [DELETE,GET,PATCH,POST,PUT] http://127.0.0.1:{port}/api/echo/{{*rest}}" in stderr
    assert "tick: timerTrigger schedule '%DEVHOST_FIXTURE_SCHEDULE%'" in stderr
    assert "work: queueTrigger queue '%DEVHOST_FIXTURE_QUEUE%'" in stderr
    assert "Received SIGTERM" in stderr
    assert not port_open(port)
