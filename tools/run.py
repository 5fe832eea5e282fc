"""`make run`: start Azurite, provision storage, seed the demo namespace, serve the API.

Runs in the foreground until Ctrl-C, then stops what it started.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests
from azure.core.exceptions import ResourceNotFoundError

from shared.bootstrap import ArchiveFromSettings, build_services
from shared.clients import StorageClients
from shared.config import Settings
from tools import azurite
from tools.archiving_cluster import ArchivingCluster, cluster_in, clusters_folder, processes_in
from tools.local_settings import ensure_local_settings
from tools.provision import provision
from tools.seed_demo import seed

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / ".azurite"
CLUSTERS = clusters_folder(REPO_ROOT / ".run")  # git-ignored; the postgres user must reach it
DEMO_SERVER = "demo"  # the archive's name for the demo's PostgreSQL: demo-production's pointInTime.server
_DATA_DIR_MARK = "azurite-data"  # in a cluster's folder: the Azurite data its databases are registered in


def cluster_dir(data_dir: Path) -> Path:
    """The demo cluster belongs with the Azurite data that registers its databases and holds its archive:
    .run/demo-postgres for the default data, a folder of its own for another (a test's)."""
    if data_dir.resolve() == DEFAULT_DATA_DIR.resolve():
        return CLUSTERS / "demo-postgres"
    return CLUSTERS / f"demo-postgres-{hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]}"


def remove_orphaned_clusters() -> None:
    """Demo clusters whose Azurite data is gone (a test's temporary folder) and that nothing runs in."""
    for directory in CLUSTERS.glob("demo-postgres-*"):
        mark = directory / _DATA_DIR_MARK
        with contextlib.suppress(OSError):
            gone = mark.exists() and not Path(mark.read_text(encoding="utf-8").strip()).exists()
            if gone and not processes_in(directory):
                shutil.rmtree(directory, ignore_errors=True)


def start_demo_cluster(
    clients: StorageClients, settings: Settings, data_dir: Path, directory: Path | None = None
) -> tuple[ArchivingCluster, bool]:
    """The demo's PostgreSQL: a cluster of our own, archiving its WAL to Azurite with barman-cloud (the
    archive the app reads, from the same settings), with a base backup now. Returns it and whether this
    run started it (one already running in its folder, another make run's, is used as it is)."""
    archive = ArchiveFromSettings(settings, clients).archive
    directory = directory or cluster_dir(data_dir)
    cluster = cluster_in(directory, DEMO_SERVER, archive)
    if cluster.running():
        print(f"The demo PostgreSQL in {directory} is running already; using it.", flush=True)
        return cluster, False
    if not cluster.initialised:
        shutil.rmtree(directory, ignore_errors=True)
        # An archive of a demo cluster that no longer exists would mix two servers' WAL under one name.
        container = clients.blob_service.get_container_client(settings.point_in_time_container)
        folder = f"{settings.point_in_time_prefix}/{DEMO_SERVER}/"
        with contextlib.suppress(ResourceNotFoundError):  # no container yet: barman-cloud makes it
            for name in [blob.name for blob in container.list_blobs(name_starts_with=folder)]:
                container.delete_blob(name)
        cluster.initdb()
        (directory / _DATA_DIR_MARK).write_text(f"{data_dir.resolve()}\n", encoding="utf-8")
        print(f"Created the demo PostgreSQL in {directory}.", flush=True)
    cluster.start()
    try:
        started = time.monotonic()
        cluster.base_backup()
    except BaseException:
        cluster.stop()
        raise
    print(
        f"The demo PostgreSQL is running (socket {directory}, port {cluster.port}), archiving its WAL to "
        f"{archive.url}/{DEMO_SERVER}; base backup taken in {time.monotonic() - started:.0f} s.",
        flush=True,
    )
    return cluster, True


def take_base_backups(cluster: ArchivingCluster, host: subprocess.Popen[bytes], every_seconds: float) -> None:
    """A base backup of the demo PostgreSQL every ``every_seconds`` until the host exits (the prune timer then
    removes those the recovery window no longer needs)."""
    while host.poll() is None:
        try:
            host.wait(timeout=every_seconds)
        except subprocess.TimeoutExpired:
            try:
                cluster.base_backup()
                print(f"Base backup of the demo PostgreSQL taken ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC).", flush=True)
            except Exception as error:  # the host goes on serving; the next one may succeed
                print(f"warning: the demo PostgreSQL's base backup failed: {error}", flush=True)


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
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--database-prefix", default="appbackups_demo")
    parser.add_argument(
        "--cluster-dir",
        type=Path,
        default=None,
        help="the demo PostgreSQL's folder, which the postgres user must reach (default: .run/demo-postgres for the "
        "default --data-dir, else .run/demo-postgres-<hash of --data-dir>)",
    )
    parser.add_argument(
        "--app-dir", type=Path, default=REPO_ROOT, help="folder of function_app.py and local.settings.json"
    )
    parser.add_argument(
        "--base-backup-hours",
        type=float,
        default=6.0,
        help="hours between the demo PostgreSQL's base backups while it runs (a restore replays the WAL since one)",
    )
    arguments = parser.parse_args(argv)

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
    cluster: ArchivingCluster | None = None
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
        settings = Settings.from_environ(environment)
        services = build_services(settings)
        provision(services.clients)
        remove_orphaned_clusters()
        demo, ours = start_demo_cluster(
            services.clients, settings, arguments.data_dir, arguments.cluster_dir and arguments.cluster_dir.resolve()
        )
        cluster = demo if ours else None
        seeded = seed(
            services,
            admin_dsn=demo.dsn(),
            database_prefix=arguments.database_prefix,
            point_in_time_server=DEMO_SERVER,
        )
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
            f"  point in time:     .venv/bin/appbackups --url {url} envs window demo-production\n"
            f"  the demo database: psql -h {demo.directory} -p {demo.port} -U postgres "
            f"{arguments.database_prefix}_production\n"
            f"  curl:              curl {url}/environments\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        if cluster is not None:
            take_base_backups(cluster, host, arguments.base_backup_hours * 3600)
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
        if cluster is not None:
            cluster.stop()
        if started is not None:
            started.stop()


if __name__ == "__main__":
    sys.exit(main())
