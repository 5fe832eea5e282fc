"""Restore benchmark: what a user would do by hand versus appbackups, in one run.

baseline: the snapshot's dump streamed from its blob into `pg_restore` of a fresh database, while
          every file document is copied from the content store with a parallel SDK server-side copy
          (16 at a time) — both at once;
ours:     a restore through the API (POST, poll until Finished) into a Stopped environment with a
          fresh database: pre-restore backup, verification, files, atomic database, clean-up.
Each is repeated and the median kept.

    .venv/bin/python -m bench.restore [--rows N] [--files N] [--repeat N]
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests

from bench.common import (
    Bench,
    Dataset,
    backup_through_api,
    bench_parser,
    bench_services,
    create_database,
    drop_database,
    generate_dataset,
    machine,
    peak_rss_mib,
    peak_rss_reset,
    register,
    write_results,
)
from shared.backups.layout import DUMP, FILES, FileEntry, snapshot_folder


def baseline(bench: Bench, details: dict) -> float:
    service = bench.services.clients.blob_service
    store = bench.services.stores
    folder = snapshot_folder(details["namespace"], details["environmentId"], details["id"])
    entries = [FileEntry.from_line(line) for line in store.snapshots.read_lines(folder + FILES) if line]
    target_container = f"baseline-{uuid.uuid4().hex[:6]}"
    service.create_container(target_container)
    database = f"appbackups_bench_baseline_{uuid.uuid4().hex[:6]}"
    create_database(database)
    errors: list[BaseException] = []

    def restore_database() -> None:
        try:
            process = subprocess.Popen(
                ["pg_restore", "--no-owner", "--no-privileges", "-h", "127.0.0.1", "-U", "postgres", "-d", database],
                stdin=subprocess.PIPE,
            )
            assert process.stdin is not None
            for chunk in store.snapshots.read_chunks(folder + DUMP):
                process.stdin.write(chunk)
            process.stdin.close()
            if process.wait() != 0:
                raise RuntimeError("pg_restore failed")
        except BaseException as error:
            errors.append(error)

    content = service.get_container_client("content")
    started = time.perf_counter()
    restorer = threading.Thread(target=restore_database)
    restorer.start()
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda entry: service.get_blob_client(target_container, f"docs/{entry.uuid}").start_copy_from_url(
                    content.get_blob_client(entry.object).url
                ),
                entries,
            )
        )
    restorer.join()
    elapsed = time.perf_counter() - started
    drop_database(database)
    service.delete_container(target_container)
    if errors:
        raise errors[0]
    return elapsed


def restore_through_api(
    bench: Bench, details: dict, source_environment: str, namespace: str
) -> tuple[float, float, dict[str, float]]:
    """Restore into a fresh Stopped environment; returns the wall time, the worker's peak RSS and
    each step's duration."""
    database = f"appbackups_bench_target_{uuid.uuid4().hex[:6]}"
    create_database(database)
    container = f"bench-target-{uuid.uuid4().hex[:6]}"
    bench.services.clients.blob_service.create_container(container)
    target = f"bench-target-{uuid.uuid4().hex[:6]}"
    register(bench, target, namespace, Dataset(database, "", container, "docs/", {}, 1))
    requests.post(f"{bench.api}/environments/{target}/stop", timeout=60).raise_for_status()
    pid = bench.host.process.pid
    peak_rss_reset(pid)
    started = time.perf_counter()
    accepted = requests.post(
        f"{bench.api}/environments/{source_environment}/backups/{details['id']}/restore",
        json={"targetEnvironment": target},
        timeout=60,
    )
    accepted.raise_for_status()
    status_url = bench.api.removesuffix("/api") + accepted.headers["Location"]
    while True:
        status = requests.get(status_url, timeout=60).json()
        if status["status"] not in ("Running", "Stalled"):
            break
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    peak = peak_rss_mib(pid)
    drop_database(database)
    if status["status"] != "Finished":
        raise RuntimeError(f"restore failed: {status['error']}")
    steps = {
        step["name"]: round(
            (datetime.fromisoformat(step["finishedOn"]) - datetime.fromisoformat(step["startedOn"])).total_seconds(), 2
        )
        for step in status["steps"]
    }
    return elapsed, peak, steps


def main() -> None:
    arguments = bench_parser(__doc__).parse_args()
    with tempfile.TemporaryDirectory(prefix="appbackups-bench-") as work, bench_services(Path(work)) as bench:
        print(f"generating {arguments.rows} rows and {arguments.files} file documents …", flush=True)
        dataset = generate_dataset(bench.services, rows=arguments.rows, files=arguments.files)
        try:
            source = f"bench-source-{uuid.uuid4().hex[:6]}"
            namespace = f"bench-restore-{uuid.uuid4().hex[:4]}"
            register(bench, source, namespace, dataset)
            _, details = backup_through_api(bench, source)
            baseline_runs, our_runs, peaks, step_runs = [], [], [], []
            for round_number in range(arguments.repeat):
                print(f"round {round_number + 1}: baseline …", flush=True)
                baseline_runs.append(baseline(bench, details))
                print(f"round {round_number + 1}: restore through the API …", flush=True)
                seconds, peak, steps = restore_through_api(bench, details, source, namespace)
                our_runs.append(seconds)
                peaks.append(peak)
                step_runs.append(steps)
                print(f"round {round_number + 1}: {seconds:.2f}s, steps {steps}", flush=True)
        finally:
            drop_database(dataset.database)
    baseline_seconds, our_seconds = statistics.median(baseline_runs), statistics.median(our_runs)
    results = {
        "benchmark": "restore",
        "machine": machine(),
        "target": {"ratio": "<= 1.25"},
        "rows": arguments.rows,
        "files": arguments.files,
        "filesBytes": details["filesSize"],
        "dumpBytes": details["dumpSize"],
        "databaseBytes": details["databaseSize"],
        "baselineSeconds": round(baseline_seconds, 2),
        "restoreSeconds": round(our_seconds, 2),
        "ratio": round(our_seconds / baseline_seconds, 3),
        "workerPeakRssMiB": round(max(peaks), 1),
        "runs": {"baseline": [round(v, 2) for v in baseline_runs], "restore": [round(v, 2) for v in our_runs]},
        "restoreStepSeconds": step_runs,
    }
    path = write_results("restore", results)
    print(
        f"baseline={results['baselineSeconds']}s restore={results['restoreSeconds']}s ratio={results['ratio']} "
        f"peak={results['workerPeakRssMiB']} MiB\nwritten to {path}"
    )


if __name__ == "__main__":
    main()
