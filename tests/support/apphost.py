"""Run the real app in the development host, in a subprocess, against test storage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from shared.config import DEFAULT_SCHEDULES, STORAGE_CONNECTION
from tools.azurite import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the app folder of a checkout holds that make run and the commands use.
APP_ENTRIES = ("function_app.py", "host.json", "requirements.txt", "local.settings.sample.json",
               "functions", "shared", "devhost")  # fmt: skip


def app_folder(where: Path) -> Path:
    """A folder that is the app as the checkout has it (its parts linked), but with a local.settings.json
    of its own: make run writes that file, and a test must not leave one in the checkout."""
    where.mkdir(parents=True, exist_ok=True)
    for name in APP_ENTRIES:
        (where / name).symlink_to(REPO_ROOT / name)
    (where / ".venv").symlink_to(REPO_ROOT / ".venv")
    return where


@dataclass
class AppHost:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_app_host(
    connection_string: str,
    log_path: Path,
    *,
    extra_settings: dict[str, str] | None = None,
    timers: bool = False,
    queues: bool = True,
) -> AppHost:
    """``queues=False`` serves the API only: work is accepted and queued, and nothing runs it."""
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("APPBACKUPS_")}
    environment.update(
        {
            "AzureWebJobsStorage": connection_string,
            STORAGE_CONNECTION: connection_string,
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "APPBACKUPS_DEVELOPMENT_MODE": "true",
            **DEFAULT_SCHEDULES,
            **(extra_settings or {}),
        }
    )
    command = [sys.executable, "-m", "devhost", "serve", "--app-dir", str(REPO_ROOT), "--port", str(port)]
    if not timers:
        command.append("--no-timers")
    if not queues:
        command.append("--no-queues")
    log_file = open(log_path, "ab")  # noqa: SIM115 - the child process owns it
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    host = AppHost(process, port, log_path)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the development host exited early:\n{host.log()}")
        try:
            requests.get(f"{host.api}/health", timeout=5)
            return host
        except requests.RequestException:
            if time.monotonic() > deadline:
                host.stop()
                raise RuntimeError(f"the development host did not answer:\n{host.log()}") from None
            time.sleep(0.2)
