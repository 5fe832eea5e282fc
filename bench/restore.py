"""Restore benchmark: a restore through the API against pg_restore of the same dump while the files are
copied, and what its checks before COMMIT cost, in one run. Method: bench/README.md."""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import psycopg
import requests

from bench.common import (
    ADMIN_DSN,
    Bench,
    Dataset,
    LoadWatch,
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
from shared.adapters.postgres.connection import ConnectionParameters
from shared.adapters.postgres.dump import dump_info, sequence_values
from shared.adapters.postgres.restore import _check_loaded
from shared.backups.layout import FILES, ROWS, FileEntry, backup_folder
from shared.dumps.reader import DumpReader


def dump_reader(bench: Bench, details: dict) -> DumpReader:
    """The backup's dump as the product reads it: chunks fetched ahead and verified, or a one-blob dump."""
    folder = backup_folder(details["namespace"], details["environmentId"], details["id"])
    stores = bench.services.stores
    return DumpReader(stores.backups, stores.content, details["namespace"], folder)


def baseline(bench: Bench, details: dict) -> float:
    service = bench.services.clients.blob_service
    store = bench.services.stores
    folder = backup_folder(details["namespace"], details["environmentId"], details["id"])
    entries = [FileEntry.from_line(line) for line in store.backups.read_lines(folder + FILES) if line]
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
            for chunk in dump_reader(bench, details).chunks():
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


class _Session:
    """What `_check_loaded` asks its psql session, asked in one open transaction of psycopg instead; each
    answer as psql's unaligned, tuples-only output gives it (a NULL is an empty line)."""

    def __init__(self, connection: psycopg.Connection) -> None:
        self._connection = connection

    def ask(self, query: str) -> str | None:
        row = self._connection.execute(query).fetchone()
        value = row[0] if row else None
        if value is None:
            return ""
        return value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict | list) else str(value)


def check_cost(bench: Bench, details: dict, database: str) -> dict[str, float]:
    """The restore's checks before its COMMIT, timed: the two reads of the dump's table of contents it makes
    before loading (tables; sequence values), and the adapter's check itself run in a transaction on the
    database the restore has just committed (the first read of its rows, so hint bits are set as it counts —
    inside the restore's transaction they need not be; a second run shows the difference)."""
    reader = dump_reader(bench, details)
    started = time.perf_counter()
    contents = dump_info(reader.chunks(), None)
    tables_read = time.perf_counter()
    sequences = sequence_values(reader.chunks(), contents, None)
    sequences_read = time.perf_counter()
    folder = backup_folder(details["namespace"], details["environmentId"], details["id"])
    row_counts = {
        str(table): int(count)
        for table, count in json.loads(bench.services.stores.backups.read_bytes(folder + ROWS))["tables"].items()
    }
    parameters = ConnectionParameters("127.0.0.1", 5432, database, "postgres", None, "prefer", 10)
    runs = []
    for _ in range(2):
        with psycopg.connect(ADMIN_DSN, dbname=database) as connection:  # one transaction, rolled back
            started_check = time.perf_counter()
            _check_loaded(_Session(connection), parameters, contents, sequences, row_counts)  # type: ignore[arg-type]
            runs.append(time.perf_counter() - started_check)
            connection.rollback()
    return {
        "tocTablesSeconds": round(tables_read - started, 3),
        "tocSequencesSeconds": round(sequences_read - tables_read, 3),
        "checkSeconds": round(runs[0], 3),
        "checkSecondsSecondRun": round(runs[1], 3),
        "tables": len(contents.tables),
        "sequences": len(sequences),
        "rowsChecked": sum(row_counts.values()),
    }


def restore_through_api(
    bench: Bench, details: dict, source_environment: str, namespace: str
) -> tuple[float, float, dict[str, float], dict[str, float]]:
    """Restore into a fresh Stopped environment; returns the wall time, the worker's peak RSS, each
    step's duration and what the restore's pre-commit checks cost (`check_cost`)."""
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
    try:
        if status["status"] != "Finished":
            raise RuntimeError(f"restore failed: {status['error']}")
        check = check_cost(bench, details, database)
    finally:
        drop_database(database)
    steps = {
        step["name"]: round(
            (datetime.fromisoformat(step["finishedOn"]) - datetime.fromisoformat(step["startedOn"])).total_seconds(), 2
        )
        for step in status["steps"]
    }
    return elapsed, peak, steps, check


def add_sequences(dataset: Dataset, count: int) -> None:
    """Sequences as an app's autonumber attributes have them, set to where the app left them, so that the
    restore's sequence check has something to check."""
    with psycopg.connect(dataset.dsn, autocommit=True) as connection:
        for number in range(count):
            name = f'"sales$orderline_autonumber{number}"'
            connection.execute(f"CREATE SEQUENCE {name}")
            connection.execute(f"SELECT setval('{name}', {1000 * (number + 1)})")


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__)
    parser.add_argument("--sequences", type=int, default=5, help="sequences in the dataset (autonumbers)")
    arguments = parser.parse_args(argv)
    load = LoadWatch()
    with tempfile.TemporaryDirectory(prefix="appbackups-bench-") as work, bench_services(Path(work)) as bench:
        print(f"generating {arguments.rows} rows and {arguments.files} file documents …", flush=True)
        dataset = generate_dataset(bench.services, rows=arguments.rows, files=arguments.files)
        try:
            add_sequences(dataset, arguments.sequences)
            source = f"bench-source-{uuid.uuid4().hex[:6]}"
            namespace = f"bench-restore-{uuid.uuid4().hex[:4]}"
            register(bench, source, namespace, dataset)
            _, details = backup_through_api(bench, source)
            baseline_runs, our_runs, peaks, step_runs, checks = [], [], [], [], []
            for round_number in range(arguments.repeat):
                print(f"round {round_number + 1}: baseline …", flush=True)
                baseline_runs.append(baseline(bench, details))
                print(f"round {round_number + 1}: restore through the API …", flush=True)
                seconds, peak, steps, check = restore_through_api(bench, details, source, namespace)
                our_runs.append(seconds)
                peaks.append(peak)
                step_runs.append(steps)
                checks.append(check)
                print(f"round {round_number + 1}: {seconds:.2f}s, steps {steps}, check {check}", flush=True)
        finally:
            drop_database(dataset.database)
    baseline_seconds, our_seconds = statistics.median(baseline_runs), statistics.median(our_runs)
    check_seconds = statistics.median(check["checkSeconds"] for check in checks)
    toc_seconds = statistics.median(check["tocTablesSeconds"] + check["tocSequencesSeconds"] for check in checks)
    switch_seconds = statistics.median(steps["switch"] for steps in step_runs)
    results = {
        "benchmark": "restore",
        "machine": machine(),
        "loadAverage": load.figures(),
        "repeat": arguments.repeat,
        "target": {"ratio": "<= 1.1", "checkShare": "<= 0.05"},
        "rows": arguments.rows,
        "files": arguments.files,
        "sequences": arguments.sequences,
        "filesBytes": details["filesSize"],
        "dumpBytes": details["dumpSize"],
        "databaseBytes": details["databaseSize"],
        "baselineSeconds": round(baseline_seconds, 2),
        "restoreSeconds": round(our_seconds, 2),
        "ratio": round(our_seconds / baseline_seconds, 3),
        "workerPeakRssMiB": round(max(peaks), 1),
        "switchSeconds": round(switch_seconds, 2),
        "checkSeconds": round(check_seconds, 3),
        "checkShare": round(check_seconds / our_seconds, 4),
        "tocReadSeconds": round(toc_seconds, 3),
        "checkAndTocShare": round((check_seconds + toc_seconds) / our_seconds, 4),
        "runs": {"baseline": [round(v, 2) for v in baseline_runs], "restore": [round(v, 2) for v in our_runs]},
        "restoreStepSeconds": step_runs,
        "checks": checks,
    }
    path = write_results("restore", results, arguments.results)
    print(
        f"baseline={results['baselineSeconds']}s restore={results['restoreSeconds']}s ratio={results['ratio']} "
        f"check={results['checkSeconds']}s ({results['checkShare']:.1%} of the restore; with the table-of-contents "
        f"reads {results['checkAndTocShare']:.1%}) peak={results['workerPeakRssMiB']} MiB\nwritten to {path}"
    )
    return results


if __name__ == "__main__":
    main()
