"""How soon a file document's content is captured for point-in-time recovery: the app refers to a new file
document every few seconds for the run's length, the development host runs the capture timer on its schedule
(the default: every minute), and each file document's lag is from the commit that refers to it to the moment
its capture is recorded (its content already copied into the content store), as the catalog is polled.

Method: docs/benchmarks/method.md. Target (issue 26): captured within 60 s at p99 with the default settings."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.common import ADMIN_DSN, LoadWatch, azurite_storage, create_database, drop_database, machine, write_results
from shared.bootstrap import build_services
from shared.config import STORAGE_CONNECTION, Settings
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import SYSTEM
from shared.schedules.ncrontab import next_occurrence
from tests.support.apphost import start_app_host
from tools.provision import provision
from tools.seed_demo import SCHEMA

DEFAULT_SCHEDULE = "0 * * * * *"  # APPBACKUPS_CAPTURE_SCHEDULE's default
TARGET_P99_SECONDS = 60.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1800, help="how long the app refers to new file documents")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between two new file documents")
    parser.add_argument("--schedule", default=DEFAULT_SCHEDULE, help="the capture timer's NCRONTAB schedule")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between two reads of the captures")
    parser.add_argument("--results", type=Path, default=None, help="default: bench/results/captures.json")
    parser.add_argument("--storage", default=None, help="a running Azurite's connection string (default: its own)")
    arguments = parser.parse_args(argv)
    load = LoadWatch()
    database = f"bench_captures_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="appbackups-bench-captures-") as work, ExitStack() as stack:
        storage = stack.enter_context(azurite_storage(Path(work), arguments.storage))
        services = build_services(Settings.from_environ({STORAGE_CONNECTION: storage}))
        provision(services.clients)
        dsn = create_database(database)
        stack.callback(drop_database, database)
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(SCHEMA)
        suffix = uuid.uuid4().hex[:8]
        container = services.clients.blob_service.get_container_client(f"bench-captures-{suffix}")
        container.create_container()
        environment_id = f"bench-captures-{suffix}"
        body = {
            "namespace": "bench",
            "appName": "bench",
            "displayName": environment_id,
            "state": "Running",
            "database": {**psycopg.conninfo.conninfo_to_dict(ADMIN_DSN), "database": database},
            "files": {"container": container.container_name, "prefix": "docs/"},
            "modelVersion": "1.0.0",
            "pointInTime": {"server": "bench-captures"},
        }
        body["database"].pop("dbname", None)
        body["database"]["port"] = int(body["database"]["port"])
        services.environments.put(environment_id, EnvironmentBody.model_validate(body).to_registration(), SYSTEM)
        host = start_app_host(
            storage,
            Path(work) / "devhost.log",
            extra_settings={"APPBACKUPS_CAPTURE_SCHEDULE": arguments.schedule},
            timers=True,
        )
        stack.callback(host.stop)

        referred: dict[str, datetime] = {}  # uuid -> the commit that referred to it
        captured: dict[str, datetime] = {}  # uuid -> when its capture was first seen recorded
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                now = datetime.now().astimezone()
                for capture in services.captures.captures(environment_id):
                    captured.setdefault(capture.uuid, now)
                done.wait(arguments.poll)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        print(f"referring to a new file document every {arguments.every} s for {arguments.seconds:.0f} s …", flush=True)
        started = time.monotonic()
        with psycopg.connect(dsn, autocommit=True) as connection:
            number = 0
            while time.monotonic() - started < arguments.seconds:
                number += 1
                file_uuid = str(uuid.uuid4())
                content = os.urandom(1024) + file_uuid.encode()
                container.upload_blob(f"docs/{file_uuid}", content)  # the app stores it, then refers to it
                row = connection.execute(
                    'INSERT INTO "system$filedocument" (id, "__uuid__", name, size, hascontents) '
                    "VALUES (%s, %s, %s, %s, true) RETURNING clock_timestamp()",
                    (number, file_uuid, f"file-{number}", len(content)),
                ).fetchone()
                assert row is not None
                referred[file_uuid] = row[0]
                time.sleep(max(0.0, started + number * arguments.every - time.monotonic()))
        # Every file document referred to gets its run: the next one of the schedule, and its copy.
        last = max(referred.values())
        deadline = time.monotonic() + (next_occurrence(arguments.schedule, last) - last).total_seconds() + 120
        while set(referred) - set(captured) and time.monotonic() < deadline:
            time.sleep(arguments.poll)
        done.set()
        watcher.join()
        runs = services.captures.latest_run(environment_id)

    lags = [(captured[file_uuid] - at).total_seconds() for file_uuid, at in referred.items() if file_uuid in captured]
    missing = sorted(set(referred) - set(captured))
    results: dict[str, Any] = {
        "benchmark": "captures",
        "machine": machine(),
        "loadAverage": load.figures(),
        "schedule": arguments.schedule,
        "seconds": arguments.seconds,
        "everySeconds": arguments.every,
        "pollSeconds": arguments.poll,
        "target": {"p99Seconds": TARGET_P99_SECONDS},
        "fileDocuments": len(referred),
        "captured": len(lags),
        "neverCaptured": len(missing),
        "lastRun": runs.ran_on.isoformat() if runs else None,
        "lagSeconds": {
            "p50": round(statistics.median(lags), 1) if lags else None,
            "p99": round(percentile(lags, 0.99), 1) if lags else None,
            "max": round(max(lags), 1) if lags else None,
            "min": round(min(lags), 1) if lags else None,
        },
    }
    path = write_results("captures", results, arguments.results)
    lag = results["lagSeconds"]
    print(
        f"{len(lags)} of {len(referred)} file documents captured; lag p50 {lag['p50']} s, p99 {lag['p99']} s, "
        f"max {lag['max']} s\nwritten to {path}"
    )
    return results


if __name__ == "__main__":
    main()
