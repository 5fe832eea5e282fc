"""Recovery benchmark: a restore killed half-way through its database load against the same restore
uninterrupted, in one run. Method: bench/README.md."""

from __future__ import annotations

import signal
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

from bench.common import (
    ADMIN_DSN,
    Dataset,
    LoadWatch,
    azurite_storage,
    bench_parser,
    create_database,
    drop_database,
    generate_dataset,
    machine,
    write_results,
)
from shared.bootstrap import Services, build_services
from shared.config import STORAGE_CONNECTION, Settings
from tests.support.apphost import AppHost, start_app_host
from tools.provision import provision

CRASH_POINT = "restore.database.half-loaded"
MAX_POLLING_SECONDS = 1  # host.json


@dataclass
class Stack:
    storage: str  # the connection string
    services: Services
    work: Path
    lease: int
    hosts: int = 0

    def host(self, crash_points: str = "") -> AppHost:
        self.hosts += 1
        settings = {"APPBACKUPS_OPERATION_LEASE_SECONDS": str(self.lease), "APPBACKUPS_CRASH_POINTS": crash_points}
        return start_app_host(self.storage, self.work / f"host-{self.hosts}.log", extra_settings=settings)


def register(api: str, environment_id: str, namespace: str, dataset: Dataset, state: str) -> None:
    body = {
        "namespace": namespace,
        "appName": "bench",
        "displayName": environment_id,
        "state": state,
        "database": {"host": "127.0.0.1", "database": dataset.database, "user": "postgres"},
        "files": {"container": dataset.container, "prefix": dataset.prefix},
        "modelVersion": "1.0.0",
    }
    requests.put(f"{api}/environments/{environment_id}", json=body, timeout=60).raise_for_status()


def digest(database: str) -> dict[str, tuple[int, int]]:
    """Per user table: its row count and the sum of its rows' hashes (equal means the same rows)."""
    dsn = psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=database)
    with psycopg.connect(dsn) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
            )
        ]
        result = {}
        for table in tables:
            count, total = connection.execute(
                f"SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM {table} t"  # noqa: S608
            ).fetchone()
            result[table] = (int(count), int(total))
        return result


def wait_done(api: str, restore_id: str, timeout: float = 3600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = requests.get(f"{api}/restores/{restore_id}", timeout=60).json()
        if status["status"] not in ("Running", "Stalled"):
            return status
        if time.monotonic() > deadline:
            raise RuntimeError(f"restore {restore_id} did not end in time")
        time.sleep(0.2)


def new_target(stack: Stack, api: str, namespace: str) -> tuple[str, str]:
    database = f"appbackups_bench_target_{uuid.uuid4().hex[:6]}"
    create_database(database)
    container = f"bench-target-{uuid.uuid4().hex[:6]}"
    stack.services.clients.blob_service.create_container(container)
    target = f"bench-target-{uuid.uuid4().hex[:6]}"
    register(api, target, namespace, Dataset(database, "", container, "docs/", {}, 1), "Stopped")
    return target, database


def restore_request(api: str, source: str, backup_id: str, target: str) -> str:
    accepted = requests.post(
        f"{api}/environments/{source}/backups/{backup_id}/restore", json={"targetEnvironment": target}, timeout=60
    )
    accepted.raise_for_status()
    return accepted.json()["id"]


def uninterrupted(stack: Stack, source: str, namespace: str, backup_id: str, expected: dict) -> float:
    host = stack.host()
    try:
        target, database = new_target(stack, host.api, namespace)
        started = time.perf_counter()
        status = wait_done(host.api, restore_request(host.api, source, backup_id, target))
        elapsed = time.perf_counter() - started
    finally:
        host.stop()
    if status["status"] != "Finished":
        raise RuntimeError(f"restore failed: {status['error']}")
    if digest(database) != expected:
        raise RuntimeError("the restored database differs from the source")
    drop_database(database)
    return elapsed


def killed(stack: Stack, source: str, namespace: str, backup_id: str, expected: dict) -> dict[str, float]:
    armed = stack.host(CRASH_POINT)
    target, database = new_target(stack, armed.api, namespace)
    started = time.perf_counter()
    restore_id = restore_request(armed.api, source, backup_id, target)
    while armed.process.poll() is None:
        time.sleep(0.02)
    if armed.process.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the armed host ended with {armed.process.returncode}, not SIGKILL")
    killed_at, killed_on = time.perf_counter(), datetime.now(UTC)
    clean = stack.host()
    try:
        resumed_at = None
        deadline = time.monotonic() + 600
        while True:
            operation = stack.services.operations.get(restore_id)
            if resumed_at is None and operation.heartbeat_on and operation.heartbeat_on > killed_on:
                resumed_at = time.perf_counter()
            if not operation.open:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the killed restore {restore_id} did not end within 600 s of the kill")
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        status = requests.get(f"{clean.api}/restores/{restore_id}", timeout=60).json()
    finally:
        clean.stop()
    if status["status"] != "Finished":
        raise RuntimeError(f"the killed restore did not finish: {status['error']}")
    if digest(database) != expected:
        raise RuntimeError("the restored database differs from the source after the crash")
    drop_database(database)
    switch = next(step for step in status["steps"] if step["name"] == "switch")
    return {
        "seconds": elapsed,
        "killedAfter": killed_at - started,
        "resumedAfterKill": (resumed_at or killed_at) - killed_at,
        "switchAttempts": switch["attempts"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__)
    parser.add_argument("--lease", type=int, default=120, help="APPBACKUPS_OPERATION_LEASE_SECONDS (shipped: 120)")
    arguments = parser.parse_args(argv)
    load = LoadWatch()
    slack = max(1.0, arguments.lease / 24)
    with (
        tempfile.TemporaryDirectory(prefix="appbackups-bench-") as work,
        azurite_storage(Path(work), arguments.storage) as storage,
    ):
        services = build_services(Settings.from_environ({STORAGE_CONNECTION: storage}))
        provision(services.clients)
        stack = Stack(storage, services, Path(work), arguments.lease)
        print(f"generating {arguments.rows} rows and {arguments.files} file documents …", flush=True)
        dataset = generate_dataset(services, rows=arguments.rows, files=arguments.files)
        try:
            source, namespace = f"bench-source-{uuid.uuid4().hex[:6]}", f"bench-recovery-{uuid.uuid4().hex[:4]}"
            host = stack.host()
            try:
                register(host.api, source, namespace, dataset, "Running")
                created = requests.post(f"{host.api}/environments/{source}/backups", json={}, timeout=60).json()
                backup_url = f"{host.api}/environments/{source}/backups/{created['id']}"
                while (details := requests.get(backup_url, timeout=60).json())["status"] == "Processing":
                    time.sleep(0.2)
            finally:
                host.stop()
            if details["status"] != "Finished":
                raise RuntimeError(f"the backup failed: {details['statusMessage']}")
            expected = digest(dataset.database)
            plain_runs, killed_runs = [], []
            for round_number in range(arguments.repeat):
                print(f"round {round_number + 1}: uninterrupted restore …", flush=True)
                plain_runs.append(uninterrupted(stack, source, namespace, details["id"], expected))
                print(f"round {round_number + 1}: restore killed half-way through the load …", flush=True)
                killed_runs.append(killed(stack, source, namespace, details["id"], expected))
                print(f"round {round_number + 1}: {plain_runs[-1]:.1f}s vs {killed_runs[-1]}", flush=True)
        finally:
            drop_database(dataset.database)
    plain = statistics.median(plain_runs)
    crashed = statistics.median(run["seconds"] for run in killed_runs)
    resumed = statistics.median(run["resumedAfterKill"] for run in killed_runs)
    bound = arguments.lease + slack + MAX_POLLING_SECONDS
    results = {
        "benchmark": "recovery",
        "machine": machine(),
        "loadAverage": load.figures(),
        "crashPoint": CRASH_POINT,
        "leaseSeconds": arguments.lease,
        "boundSeconds": round(bound, 1),
        "rows": arguments.rows,
        "files": arguments.files,
        "dumpBytes": details["dumpSize"],
        "uninterruptedSeconds": round(plain, 2),
        "killedSeconds": round(crashed, 2),
        "overheadSeconds": round(crashed - plain, 2),
        "resumedAfterKillSeconds": round(resumed, 2),
        "withinBound": all(run["resumedAfterKill"] <= bound for run in killed_runs),
        "targetEqualsSource": True,  # each run raised otherwise
        "runs": {
            "uninterrupted": [round(value, 2) for value in plain_runs],
            "killed": [{key: round(value, 2) for key, value in run.items()} for run in killed_runs],
        },
    }
    path = write_results("recovery", results, arguments.results)
    print(
        f"uninterrupted={results['uninterruptedSeconds']}s killed={results['killedSeconds']}s "
        f"overhead={results['overheadSeconds']}s resumed {results['resumedAfterKillSeconds']}s after the kill "
        f"(bound {results['boundSeconds']}s)\nwritten to {path}"
    )
    return results


if __name__ == "__main__":
    main()
