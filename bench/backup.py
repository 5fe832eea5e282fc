"""Backup benchmark: a backup through the API against the fastest hand-made one (pg_dump into a blob while
the files are copied), in one run. Method: bench/README.md."""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import (
    Bench,
    Dataset,
    LoadWatch,
    add_files,
    backup_through_api,
    bench_parser,
    bench_services,
    drop_database,
    file_sizes,
    generate_dataset,
    machine,
    peak_rss_mib,
    peak_rss_reset,
    pg_dump_command,
    register,
    write_results,
)


def _dump_into_blob(bench: Bench, dataset: Dataset, container: str) -> None:
    process = subprocess.Popen(pg_dump_command(dataset.database), stdout=subprocess.PIPE)
    bench.services.clients.blob_service.get_blob_client(container, "db.backup").upload_blob(
        process.stdout, max_concurrency=4
    )
    if process.wait() != 0:
        raise RuntimeError("pg_dump failed")


def dump_alone(bench: Bench, dataset: Dataset) -> float:
    service = bench.services.clients.blob_service
    target = f"dump-{uuid.uuid4().hex[:6]}"
    service.create_container(target)
    started = time.perf_counter()
    _dump_into_blob(bench, dataset, target)
    elapsed = time.perf_counter() - started
    service.delete_container(target)
    return elapsed


def baseline(bench: Bench, dataset: Dataset) -> float:
    """pg_dump into a blob and a parallel copy of every file, concurrently."""
    service = bench.services.clients.blob_service
    target = f"baseline-{uuid.uuid4().hex[:6]}"
    service.create_container(target)
    source = service.get_container_client(dataset.container)
    errors: list[BaseException] = []

    def dump() -> None:
        try:
            _dump_into_blob(bench, dataset, target)
        except BaseException as error:
            errors.append(error)

    started = time.perf_counter()
    dumper = threading.Thread(target=dump)
    dumper.start()
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda file_uuid: service.get_blob_client(target, file_uuid).start_copy_from_url(
                    source.get_blob_client(dataset.prefix + file_uuid).url
                ),
                list(dataset.files),
            )
        )
    dumper.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    service.delete_container(target)
    return elapsed


def run_size(bench: Bench, label: str, rows: int, files: int, repeat: int) -> dict:
    print(f"[{label}] generating {rows} rows and {files} file documents …", flush=True)
    dataset = generate_dataset(bench.services, rows=rows, files=files)
    try:
        pid = bench.host.process.pid
        baseline_runs, full_runs, second_runs, dump_runs, full_peaks, second_peaks = [], [], [], [], [], []
        count_runs: list[float] = []
        for round_number in range(repeat):
            print(f"[{label}] round {round_number + 1}: (a) baseline …", flush=True)
            baseline_runs.append(baseline(bench, dataset))
            print(f"[{label}] round {round_number + 1}: (d) pg_dump alone …", flush=True)
            dump_runs.append(dump_alone(bench, dataset))
            environment_id = f"bench-{label}-{uuid.uuid4().hex[:6]}"
            register(bench, environment_id, f"bench-{label}-{round_number}", dataset)
            print(f"[{label}] round {round_number + 1}: (b) full backup through the API …", flush=True)
            peak_rss_reset(pid)
            seconds, full = backup_through_api(bench, environment_id)
            full_runs.append(seconds)
            full_peaks.append(peak_rss_mib(pid))
            made = bench.services.operations.get(full["operationId"]).output("dump", "rowCountSeconds")
            count_runs.append(float(made))
            new_files = max(1, files // 100)
            add_files(bench.services, dataset, file_sizes(new_files, seed=99 + round_number))
            print(f"[{label}] round {round_number + 1}: (c) backup after {new_files} new files …", flush=True)
            peak_rss_reset(pid)
            seconds, second = backup_through_api(bench, environment_id)
            second_runs.append(seconds)
            second_peaks.append(peak_rss_mib(pid))
        baseline_seconds, full_seconds, second_seconds, dump_seconds = (
            statistics.median(runs) for runs in (baseline_runs, full_runs, second_runs, dump_runs)
        )
        full_peak, second_peak = max(full_peaks), max(second_peaks)
        count_seconds = statistics.median(count_runs)
        return {
            "rows": rows,
            "files": files,
            "filesBytes": full["filesSize"],
            "databaseBytes": full["databaseSize"],
            "dumpBytes": full["dumpSize"],
            "a_baselineSeconds": round(baseline_seconds, 2),
            "b_fullBackupSeconds": round(full_seconds, 2),
            "c_secondBackupSeconds": round(second_seconds, 2),
            "d_dumpAloneSeconds": round(dump_seconds, 2),
            "ratio_b_over_a": round(full_seconds / baseline_seconds, 3),
            "ratio_c_over_b": round(second_seconds / full_seconds, 3),
            "ratio_d_over_b": round(dump_seconds / full_seconds, 3),
            "e_rowCountSeconds": round(count_seconds, 3),
            "ratio_e_over_b": round(count_seconds / full_seconds, 4),
            "b_filesCopied": full["filesCopied"],
            "c_filesCopied": second["filesCopied"],
            "c_bytesCopiedShare": round(second["filesSize"] / full["filesSize"] - 1, 4),
            "runs": {
                "a": [round(value, 2) for value in baseline_runs],
                "b": [round(value, 2) for value in full_runs],
                "c": [round(value, 2) for value in second_runs],
                "d": [round(value, 2) for value in dump_runs],
                "e": [round(value, 3) for value in count_runs],
            },
            "workerPeakRssMiB_b": round(full_peak, 1),
            "workerPeakRssMiB_c": round(second_peak, 1),
        }
    finally:
        drop_database(dataset.database)


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__, rows=3_000_000, files=8000)
    parser.add_argument("--small-rows", type=int, default=1_500_000)
    parser.add_argument("--small-files", type=int, default=4000)
    arguments = parser.parse_args(argv)
    load = LoadWatch()
    with tempfile.TemporaryDirectory(prefix="appbackups-bench-") as work, bench_services(Path(work)) as bench:
        small = run_size(bench, "small", arguments.small_rows, arguments.small_files, arguments.repeat)
        large = run_size(bench, "large", arguments.rows, arguments.files, arguments.repeat)
    results = {
        "benchmark": "backup",
        "machine": machine(),
        "loadAverage": load.figures(),
        "repeat": arguments.repeat,
        "targets": {
            "ratio_b_over_a": "<= 1.0",
            "ratio_c_over_b": "<= 0.15",
            "ratio_e_over_b": "<= 0.1",
            "peak memory": "independent of size",
        },
        "small": small,
        "large": large,
    }
    path = write_results("backup", results, arguments.results)
    for label, figures in (("small", small), ("large", large)):
        print(
            f"{label:>5}: a={figures['a_baselineSeconds']}s b={figures['b_fullBackupSeconds']}s "
            f"c={figures['c_secondBackupSeconds']}s d={figures['d_dumpAloneSeconds']}s "
            f"b/a={figures['ratio_b_over_a']} c/b={figures['ratio_c_over_b']} d/b={figures['ratio_d_over_b']} "
            f"row counts e={figures['e_rowCountSeconds']}s e/b={figures['ratio_e_over_b']} "
            f"peak={figures['workerPeakRssMiB_b']}/{figures['workerPeakRssMiB_c']} MiB"
        )
    print(f"written to {path}")
    return results


if __name__ == "__main__":
    main()
