"""The commands of the README and the documentation after `make run`, as a new user types them: make run's
orchestration (tools.run) on free ports with an app folder of its own, then every line of the blocks marked for
this test — the README's first backup and restore, the Getting started page's quick start, the command-line
client's tour — in that order, from that folder. The API address they name (127.0.0.1:7071) is this run's; ID,
RESTORE_ID and OLD_ENV are filled in. It also checks what make run serves before the commands (the demo namespace,
a healthy host), local.settings.json, which it writes for func start and devhost fire, that devhost fire's nightly
backups are made by the running host, and that it stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from shared.config import DEFAULT_SCHEDULES
from tests.support.apphost import app_folder
from tests.support.polling import wait_for
from tools.azurite import connection_string, free_port, port_open
from tools.run import cluster_dir
from tools.seed_demo import drop

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV = REPO_ROOT / ".venv"
MARKER = re.compile(r"<!-- tests/e2e/test_readme_commands\.py runs this block[^>]*-->\n```sh\n(.*?)```", re.S)
README_API = "http://127.0.0.1:7071/api"
# Where the marked blocks are, one each, in the order a reader meets them.
PAGES = ("README.md", "docs/index.md", "docs/guide/command-line.md")


def readme_lines() -> list[str]:
    lines = []
    for page in PAGES:
        blocks = MARKER.findall((REPO_ROOT / page).read_text(encoding="utf-8"))
        assert len(blocks) == 1, f"{page} has {len(blocks)} blocks marked for this test, not one"
        lines += [line.rstrip() for line in blocks[0].splitlines() if line.strip()]
    return lines


def test_the_readme_commands_work_after_make_run(tmp_path, postgres_admin_dsn):
    app_dir = app_folder(tmp_path / "app")
    ports = {name: free_port() for name in ("api", "blob", "queue", "table")}
    prefix = f"appbackups_test_readme_{uuid.uuid4().hex[:8]}"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("APPBACKUPS_")}
    environment.pop("BackupStorage", None)
    environment.pop("AzureWebJobsStorage", None)
    command = [
        sys.executable, "-m", "tools.run",
        "--api-port", str(ports["api"]), "--blob-port", str(ports["blob"]),
        "--queue-port", str(ports["queue"]), "--table-port", str(ports["table"]),
        "--data-dir", str(tmp_path / "azurite"), "--database-prefix", prefix, "--app-dir", str(app_dir),
    ]  # fmt: skip
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{ports['api']}/api"
    try:
        wait_for(lambda: b"is serving" in log_path.read_bytes() or process.poll() is not None, 120, what="make run")
        assert process.poll() is None, log_path.read_text()
        health = requests.get(f"{api}/health", timeout=30)
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "healthy"
        environments = requests.get(f"{api}/environments", timeout=30).json()["items"]
        assert {(env["id"], env["state"]) for env in environments} == {
            ("demo-production", "Running"),
            ("demo-acceptance", "Stopped"),
        }

        # func start's settings file: written by make run, with this Azurite and the schedules.
        settings = json.loads((app_dir / "local.settings.json").read_text(encoding="utf-8"))
        storage = connection_string(ports["blob"], ports["queue"], ports["table"])
        assert settings["IsEncrypted"] is False
        assert settings["Host"]["LocalHttpPort"] == ports["api"]
        values = settings["Values"]
        assert (values["BackupStorage"], values["AzureWebJobsStorage"]) == (storage, storage)
        assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
        assert values["APPBACKUPS_DEVELOPMENT_MODE"] == "true"
        assert {name: values[name] for name in DEFAULT_SCHEDULES} == DEFAULT_SCHEDULES

        run_readme(api, app_dir, environment)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        finally:
            drop(postgres_admin_dsn, prefix)
            shutil.rmtree(cluster_dir(tmp_path / "azurite"), ignore_errors=True)  # the run's own demo cluster
    assert process.returncode == 0, log_path.read_text()
    assert not any(port_open(port) for port in ports.values()), "make run left a process listening"


def run_readme(api: str, app_dir: Path, environment: dict[str, str]) -> None:
    shell_env = {
        **environment,
        "PATH": f"{VENV / 'bin'}:{environment['PATH']}",
        "APPBACKUPS_URL": api,
        "APPBACKUPS_CONFIG": os.devnull,
        "COLUMNS": "200",
    }

    def sh(line: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", line], cwd=app_dir, env=shell_env, capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip

    # What a reader would paste in for ID and OLD_ENV: a backup of demo-production, an environment to retire.
    made = sh("appbackups --json backups create demo-production --comment 'for the README' --wait")
    assert made.returncode == 0, made.stderr
    names = {"ID": json.loads(made.stdout)["id"], "OLD_ENV": "demo-retired"}
    production = requests.get(f"{api}/environments/demo-production", timeout=30).json()
    retired = {"namespace": "demo", "appName": "demo-app", "displayName": "Retired", "state": "Stopped",
               "database": production["database"], "files": production["files"]}  # fmt: skip
    assert requests.put(f"{api}/environments/demo-retired", json=retired, timeout=30).status_code == 201

    for line in readme_lines():
        if line.lstrip().startswith("#"):
            for url in re.findall(r"http://\S+", line):
                page = requests.get(url.replace(README_API, api), timeout=30)
                assert page.status_code == 200, (line, page.status_code)
            continue
        command = line.replace(README_API, api)
        for placeholder, value in names.items():
            command = re.sub(rf"\b{placeholder}\b", value, command)
        assert not re.search(r"\b(ID|RESTORE_ID|OLD_ENV)\b", command.split("#")[0]), f"unfilled: {command}"
        result = sh(command)
        assert result.returncode == 0, f"{line}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        if re.search(r"(--json|-o json)\b", command.split("#")[0]) or command.startswith("curl"):
            json.loads(result.stdout)
        if " restore " in f" {command}" and "--wait" in command:
            names["RESTORE_ID"] = re.search(r"restore (\S+): FINISHED", result.stdout)[1]  # type: ignore[index]
        if "devhost fire nightly_backups" in command:
            wait_for(lambda: nightly_finished(api), 120, interval=0.5, what="the nightly backups devhost fire queued")

    # What the commands did, as the API sees it afterwards.
    assert (app_dir / "snapshot.tar.gz").stat().st_size > 0
    gone = requests.get(f"{api}/environments/demo-retired", timeout=30).json()
    assert gone["state"] == "Deregistered"
    listed = [item["id"] for item in requests.get(f"{api}/environments", timeout=30).json()["items"]]
    assert "demo-retired" not in listed
    deleted = requests.get(f"{api}/environments/demo-production/backups/{names['ID']}", timeout=30)
    assert deleted.status_code == 404


def nightly_finished(api: str) -> bool:
    for environment in ("demo-production", "demo-acceptance"):
        items = requests.get(f"{api}/environments/{environment}/backups", timeout=30).json()["items"]
        if not any(item["tier"] == "nightly" and item["status"] == "Finished" for item in items):
            return False
    return True
