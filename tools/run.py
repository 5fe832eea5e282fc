"""`make run`: start Azurite, provision storage, seed the demo namespace, serve the API.

Runs in the foreground until Ctrl-C, then stops what it started.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import requests

from shared.bootstrap import build_services
from shared.config import Settings
from tools import azurite
from tools.local_settings import ensure_local_settings
from tools.provision import provision
from tools.seed_demo import ADMIN_DSN, seed

REPO_ROOT = Path(__file__).resolve().parent.parent


def ensure_postgres(admin_dsn: str) -> None:
    """Check the local PostgreSQL; start the machine's cluster if it is down and we may."""
    try:
        psycopg.connect(admin_dsn, connect_timeout=3).close()
        return
    except psycopg.OperationalError:
        pass
    clusters = sorted(glob.glob("/etc/postgresql/*/main"))
    if clusters and shutil.which("pg_ctlcluster"):
        version = Path(clusters[-1]).parent.name
        print(f"PostgreSQL is not answering; starting cluster {version}/main …", flush=True)
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
        for _ in range(30):
            try:
                psycopg.connect(admin_dsn, connect_timeout=3).close()
                return
            except psycopg.OperationalError:
                time.sleep(1)
    raise SystemExit(f"PostgreSQL is not reachable at {admin_dsn!r}; start it and run again.")


def app_environment(local_settings: dict[str, str]) -> dict[str, str]:
    """The settings the app sees: local.settings.json's, under what the process environment sets (as the
    Functions host merges them)."""
    return {**local_settings, **os.environ}


def wait_for_api(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the development host exited with code {process.returncode}")
        try:
            requests.get(f"{url}/health", timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise SystemExit("the development host did not answer in time")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # Set explicitly: a shell that starts us in the background would otherwise leave SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-port", type=int, default=7071)
    parser.add_argument("--blob-port", type=int, default=10000)
    parser.add_argument("--queue-port", type=int, default=10001)
    parser.add_argument("--table-port", type=int, default=10002)
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / ".azurite")
    parser.add_argument("--admin-dsn", default=ADMIN_DSN)
    parser.add_argument("--database-prefix", default="appbackups_demo")
    parser.add_argument(
        "--app-dir", type=Path, default=REPO_ROOT, help="folder of function_app.py and local.settings.json"
    )
    arguments = parser.parse_args(argv)

    ensure_postgres(arguments.admin_dsn)
    ports = (arguments.blob_port, arguments.queue_port, arguments.table_port)
    started: azurite.Azurite | None = None
    if all(azurite.port_open(port) for port in ports):
        print(f"Azurite is already listening on {ports}; using it.", flush=True)
        connection_string = azurite.connection_string(*ports)
    else:
        started = azurite.start(
            arguments.data_dir,
            blob_port=arguments.blob_port,
            queue_port=arguments.queue_port,
            table_port=arguments.table_port,
            log_file=arguments.data_dir / "azurite.log",
        )
        connection_string = started.connection_string
        print(f"Azurite started (data in {arguments.data_dir}).", flush=True)

    host: subprocess.Popen[bytes] | None = None
    try:
        app_dir: Path = arguments.app_dir.resolve()
        settings_file = ensure_local_settings(app_dir, connection_string, arguments.api_port)
        if settings_file.written:
            print(f"Wrote {settings_file.path} (Azurite, the schedules, development mode).", flush=True)
        else:
            print(f"Using {settings_file.path}.", flush=True)
        for warning in settings_file.warnings:
            print(f"warning: {warning}", flush=True)
        environment = app_environment(settings_file.values)
        services = build_services(Settings.from_environ(environment))
        provision(services.clients)
        seeded = seed(services, admin_dsn=arguments.admin_dsn, database_prefix=arguments.database_prefix)
        print(f"Demo namespace 'demo' ready: {', '.join(seeded)}.", flush=True)

        # The host reads local.settings.json itself, as `func start` does: it gets only our own environment.
        host = subprocess.Popen(
            [sys.executable, "-m", "devhost", "serve", "--app-dir", str(app_dir), "--port", str(arguments.api_port)],
            cwd=app_dir,
            env={"MALLOC_ARENA_MAX": "2", **os.environ},  # as the image: bounded malloc arenas (README, bench.soak)
        )
        url = f"http://127.0.0.1:{arguments.api_port}/api"
        wait_for_api(url, host)
        print(
            f"\nappbackups is serving {url}\n"
            f"  the Backups page:  {url}/portal\n"
            f"  the API docs:      {url}/docs\n"
            f"  the CLI:           .venv/bin/appbackups --url {url} envs list\n"
            f"  a timer, now:      .venv/bin/python -m devhost fire nightly_backups\n"
            f"  curl:              curl {url}/environments\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        host.wait()
        return host.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        if host is not None and host.poll() is None:
            host.send_signal(signal.SIGINT)
            try:
                host.wait(timeout=20)
            except subprocess.TimeoutExpired:
                host.kill()
        if started is not None:
            started.stop()


if __name__ == "__main__":
    sys.exit(main())
