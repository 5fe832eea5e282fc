"""Soak benchmark: many jobs in a row in one host process, and its resting memory after each.
Method: bench/README.md."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import requests

from bench.common import (
    STORAGE_HELP,
    Bench,
    Dataset,
    LoadWatch,
    add_files,
    azurite_storage,
    backup_through_api,
    create_database,
    drop_database,
    generate_dataset,
    machine,
    register,
    write_results,
)
from bench.scale import small_sizes
from shared.bootstrap import build_services
from shared.config import STORAGE_CONNECTION, Settings
from tests.support.apphost import start_app_host
from tools.provision import provision
from tools.seed_demo import SCHEMA

REST_SECONDS = 2.0  # idle time before a resting reading: the job's threads have ended, its pools are gone


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@contextmanager
def soak_services(work_dir: Path, host_settings: dict[str, str], storage: str | None = None) -> Iterator[Bench]:
    with azurite_storage(work_dir, storage, in_memory=True) as connection_string:
        services = build_services(Settings.from_environ({STORAGE_CONNECTION: connection_string}))
        provision(services.clients)
        host = start_app_host(connection_string, work_dir / "devhost.log", extra_settings=host_settings)
        try:
            yield Bench(connection_string, services, host, work_dir)
        finally:
            host.stop()


def restore_through_api(bench: Bench, source: str, backup_id: str, target: str, timeout: float = 1800) -> float:
    started = time.perf_counter()
    response = requests.post(
        f"{bench.api}/environments/{source}/backups/{backup_id}/restore", json={"targetEnvironment": target}, timeout=60
    )
    response.raise_for_status()
    location = bench.api.removesuffix("/api") + response.headers["Location"]
    while True:
        document = requests.get(location, timeout=60).json()
        if document["status"] not in ("Running", "Stalled"):
            if document["status"] != "Finished":
                raise RuntimeError(f"restore failed: {document.get('error')}")
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise RuntimeError("restore did not finish in time")
        time.sleep(0.1)


def empty_target(bench: Bench, namespace: str) -> tuple[str, Dataset]:
    name = f"appbackups_soak_t_{int(time.time() * 1000) % 10**8}"
    dsn = create_database(name)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(SCHEMA)
    container = f"soak-target-{name[-8:]}"
    bench.services.clients.blob_service.create_container(container)
    target = Dataset(name, dsn, container, "docs/", {}, 1)
    register(bench, "soak-target", namespace, target)
    response = requests.post(f"{bench.api}/environments/soak-target/stop", timeout=60)
    response.raise_for_status()
    return "soak-target", target


def run(
    *,
    backups: int,
    restores: int,
    files: int,
    rows: int,
    work_dir: Path,
    host_settings: dict[str, str],
    rest_seconds: float = REST_SECONDS,
    storage: str | None = None,
) -> dict[str, Any]:
    with soak_services(work_dir, host_settings, storage) as bench:
        pid = bench.host.process.pid
        dataset = generate_dataset(bench.services, rows=rows, files=0)
        add_files(bench.services, dataset, small_sizes(files, seed=5))
        target: Dataset | None = None
        try:
            register(bench, "soak-source", "soak", dataset)
            start = rss_mib(pid)
            readings: list[dict[str, Any]] = []
            last_backup = ""
            for number in range(backups):
                seconds, details = backup_through_api(bench, "soak-source")
                last_backup = details["id"]
                time.sleep(rest_seconds)
                readings.append({"job": f"backup {number + 1}", "seconds": round(seconds, 2), "rssMiB": rss_mib(pid)})
                now_mib = readings[-1]["rssMiB"]
                print(f"backup {number + 1}: {seconds:.1f} s, resting RSS {now_mib:.1f} MiB", flush=True)
            target_id, target = empty_target(bench, "soak")
            for number in range(restores):
                seconds = restore_through_api(bench, "soak-source", last_backup, target_id)
                time.sleep(rest_seconds)
                readings.append({"job": f"restore {number + 1}", "seconds": round(seconds, 2), "rssMiB": rss_mib(pid)})
                now_mib = readings[-1]["rssMiB"]
                print(f"restore {number + 1}: {seconds:.1f} s, resting RSS {now_mib:.1f} MiB", flush=True)
        finally:
            drop_database(dataset.database)
            if target is not None:
                drop_database(target.database)
    first = readings[0]["rssMiB"]
    resting = [reading["rssMiB"] for reading in readings]
    return {
        "benchmark": "soak",
        "machine": machine(),
        "hostSettings": host_settings,
        "files": files,
        "rows": rows,
        "rssBeforeFirstJobMiB": round(start, 1),
        "rssAfterFirstJobMiB": round(first, 1),
        "rssMaxRestingMiB": round(max(resting), 1),
        "rssLastMiB": round(resting[-1], 1),
        "growthOverFirstMiB": round(max(resting) - first, 1),
        "target": "resting RSS within 30 MiB of the reading after the first job",
        "met": max(resting) - first <= 30,
        "readings": [{**reading, "rssMiB": round(reading["rssMiB"], 1)} for reading in readings],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backups", type=int, default=50)
    parser.add_argument("--restores", type=int, default=10)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--malloc-arena-max", type=int, default=None)
    parser.add_argument("--rest-seconds", type=float, default=REST_SECONDS, help="idle time before each reading")
    parser.add_argument("--output", default="soak", help="the results' name: bench/results/<output>.json")
    parser.add_argument("--results", type=Path, default=None, help="where to write the results (instead of --output)")
    parser.add_argument("--storage", default=None, help=STORAGE_HELP)
    arguments = parser.parse_args(argv)
    load = LoadWatch()
    host_settings = {} if arguments.malloc_arena_max is None else {"MALLOC_ARENA_MAX": str(arguments.malloc_arena_max)}
    with tempfile.TemporaryDirectory(prefix="appbackups-soak-") as work:
        results = run(
            backups=arguments.backups,
            restores=arguments.restores,
            files=arguments.files,
            rows=arguments.rows,
            work_dir=Path(work),
            host_settings=host_settings,
            rest_seconds=arguments.rest_seconds,
            storage=arguments.storage,
        )
    results["loadAverage"] = load.figures()
    path = write_results(arguments.output, results, arguments.results)
    print(
        f"resting RSS: after the first job {results['rssAfterFirstJobMiB']} MiB, at most {results['rssMaxRestingMiB']} "
        f"MiB (+{results['growthOverFirstMiB']}), last {results['rssLastMiB']} MiB; target met: {results['met']}"
    )
    print(f"written to {path}")
    return results


if __name__ == "__main__":
    main()
