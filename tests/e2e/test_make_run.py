"""`make run`'s orchestration (tools.run) on free ports: Azurite, provisioning, demo seed, API."""

import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.apphost import app_folder
from tests.support.polling import wait_for
from tools.azurite import free_port, port_open
from tools.run import cluster_dir
from tools.seed_demo import drop

pytestmark = pytest.mark.e2e

# tools.run writes the app folder's local.settings.json when there is none, with this run's Azurite: a file
# left behind would point the next run at an Azurite that is gone.
LOCAL_SETTINGS = Path(__file__).resolve().parents[2] / "local.settings.json"


def test_run_serves_the_demo_namespace_and_stops_cleanly(tmp_path, postgres_admin_dsn):
    ports = {name: free_port() for name in ("api", "blob", "queue", "table")}
    prefix = f"appbackups_test_run_{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable, "-m", "tools.run",
        "--api-port", str(ports["api"]),
        "--blob-port", str(ports["blob"]),
        "--queue-port", str(ports["queue"]),
        "--table-port", str(ports["table"]),
        "--data-dir", str(tmp_path / "azurite"),
        "--database-prefix", prefix,
        "--app-dir", str(app_folder(tmp_path / "app")),  # its own local.settings.json, not the checkout's
    ]  # fmt: skip
    had_settings = LOCAL_SETTINGS.exists()
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{ports['api']}/api"
    try:

        def serving() -> bool:
            assert process.poll() is None, (tmp_path / "run.log").read_text()
            return b"is serving" in (tmp_path / "run.log").read_bytes()

        wait_for(serving, 90, interval=0.3, what="make run serving")
        health = requests.get(f"{api}/health", timeout=30)
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "healthy"
        environments = requests.get(f"{api}/environments", timeout=30).json()["items"]
        assert {(env["id"], env["state"]) for env in environments} == {
            ("demo-production", "Running"),
            ("demo-acceptance", "Stopped"),
        }
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        finally:
            log.close()
            drop(postgres_admin_dsn, prefix)
            shutil.rmtree(cluster_dir(tmp_path / "azurite"), ignore_errors=True)  # the run's own demo cluster
            if not had_settings:
                LOCAL_SETTINGS.unlink(missing_ok=True)
    assert process.returncode == 0, (tmp_path / "run.log").read_text()
    assert not any(port_open(port) for port in ports.values()), "tools.run left a process listening"
