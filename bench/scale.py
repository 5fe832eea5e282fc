"""Scale benchmark: backups and restores by the number of file documents, in time and storage transactions,
against hand-made baselines on the same Azurite. Method: bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from bench.common import (
    Dataset,
    add_files,
    cpu_seconds,
    create_database,
    drop_database,
    file_sizes,
    generate_dataset,
    machine,
    peak_rss_mib,
    peak_rss_reset,
    pg_dump_command,
    rss_mib,
    wait_until_idle,
    write_results,
)
from shared.adapters.allocator import release_free_memory
from shared.adapters.metering import StorageMeter
from shared.archives.fullsnapshot import METADATA
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import SYSTEM, Principal
from shared.domain.downloads import DataType
from shared.domain.operations import OperationStatus
from shared.streams import bounded_map
from tests.support.restoring import Harness
from tools import azurite
from tools.provision import provision
from tools.seed_demo import SCHEMA

ACTOR = Principal(id="bench", name="Bench")
COPY_CONCURRENCY = 32


def small_sizes(count: int, seed: int) -> list[int]:
    """1-4 KB, as the small file documents of the operator's test."""
    rng = random.Random(seed)
    return [rng.randint(1024, 4096 - 40) for _ in range(count)]


class Scale:
    def __init__(self, harness: Harness, meter: StorageMeter, work_dir: Path, storage_pid: int | None = None) -> None:
        self.harness = harness
        self.storage_pid = storage_pid  # Azurite's: each measurement starts once it is idle
        self.services = harness.services
        self.meter = meter
        self.work_dir = work_dir
        self.blob_service = self.services.clients.blob_service
        self.measured_then_removed: list[str] = []

    # -- measuring ---------------------------------------------------------------------------------

    def measure(self, work: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
        pid = os.getpid()
        waited = wait_until_idle(self.storage_pid) if self.storage_pid else 0.0
        release_free_memory()  # what earlier work freed goes back, so the resident set at the start is what is live
        at_start = rss_mib(pid)
        peak_rss_reset(pid)
        storage_cpu = cpu_seconds(self.storage_pid) if self.storage_pid else 0.0
        own_cpu = cpu_seconds(pid)
        with self.meter.measuring() as measured:
            started = time.perf_counter()
            result = work()
            seconds = time.perf_counter() - started
        peak = peak_rss_mib(pid)
        figures = {
            "seconds": seconds,
            # Cores busy on average: Azurite (one Node thread serves every request; 1.0 is all it has) and
            # this process (the work, its threads, and pg_dump/pg_restore not counted: they are children).
            "storageCores": round((cpu_seconds(self.storage_pid) - storage_cpu) / seconds, 2)
            if self.storage_pid
            else None,
            "processCores": round((cpu_seconds(pid) - own_cpu) / seconds, 2),
            "transactions": measured.by_kind(),
            "peakRssMiB": round(peak, 1),
            "rssAtStartMiB": round(at_start, 1),
            "peakGrowthMiB": round(peak - at_start, 1),  # what the work itself took, at most
            "waitedForIdleStorageSeconds": round(waited, 1),
        }
        return result, figures

    # -- the baselines -----------------------------------------------------------------------------

    def copy_files(self, container: str, prefix: str, target: str) -> int:
        """What an operator scripts: list the prefix, server-side copy every blob, 32 at a time."""
        self.blob_service.create_container(target)
        source = self.blob_service.get_container_client(container)

        def copy(name: str) -> None:
            self.blob_service.get_blob_client(target, name).start_copy_from_url(source.get_blob_client(name).url)

        with ThreadPoolExecutor(COPY_CONCURRENCY) as pool:  # copies in flight bounded, as a careful script does
            names = (blob.name for blob in source.list_blobs(name_starts_with=prefix))
            return sum(1 for _ in bounded_map(pool, copy, names, 2 * COPY_CONCURRENCY))

    def copy_baseline(self, dataset: Dataset) -> None:
        target = f"baseline-{uuid.uuid4().hex[:8]}"
        self.measured_then_removed.append(target)
        self.copy_files(dataset.container, dataset.prefix, target)

    def remove_containers(self) -> None:
        """Housekeeping between rounds (untimed): the baselines' copies go."""
        while self.measured_then_removed:
            self.blob_service.delete_container(self.measured_then_removed.pop())

    def dump_into_blob(self, database: str) -> None:
        container = f"dump-{uuid.uuid4().hex[:8]}"
        self.blob_service.create_container(container)
        process = subprocess.Popen(pg_dump_command(database), stdout=subprocess.PIPE)
        self.blob_service.get_blob_client(container, "db.backup").upload_blob(process.stdout, max_concurrency=4)
        if process.wait() != 0:
            raise RuntimeError("pg_dump failed")

    def restore_baseline(self, dump_file: Path, dataset: Dataset) -> None:
        """pg_restore of the dump into an empty database while the files are copied: both at once."""
        name = f"appbackups_bench_r_{uuid.uuid4().hex[:8]}"
        create_database(name)
        errors: list[BaseException] = []

        def load() -> None:
            try:
                command = ["pg_restore", "-O", "-x", "-h", "127.0.0.1", "-U", "postgres", "-d", name, str(dump_file)]
                subprocess.run(command, check=True, capture_output=True)
            except BaseException as error:
                errors.append(error)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            self.copy_baseline(dataset)
        finally:
            loader.join()
            drop_database(name)
        if errors:
            raise errors[0]

    # -- the service ---------------------------------------------------------------------------------

    def register(self, dataset: Dataset, namespace: str, state: str = "Running") -> str:
        environment_id = f"scale-{uuid.uuid4().hex[:8]}"
        body = EnvironmentBody.model_validate(
            {
                "namespace": namespace,
                "appName": "bench",
                "displayName": environment_id,
                "state": state,
                "database": {"host": "127.0.0.1", "port": 5432, "database": dataset.database, "user": "postgres"},
                "files": {"container": dataset.container, "prefix": dataset.prefix},
                "modelVersion": "1.0.0",
            }
        )
        self.services.environments.put(environment_id, body.to_registration(), SYSTEM)
        return environment_id

    def backup(self, environment_id: str) -> str:
        return self.harness.backup(environment_id, ACTOR)

    def restore(self, source_id: str, backup_id: str, target_id: str) -> None:
        operation = self.services.restores.request(source_id, backup_id, target_id, ACTOR)
        self.harness.drain()
        done = self.services.restores.get(operation.id)
        if done.status is not OperationStatus.FINISHED:
            raise RuntimeError(f"restore failed: {done.error}")

    def empty_target(self, namespace: str) -> tuple[str, Dataset]:
        name = f"appbackups_bench_t_{uuid.uuid4().hex[:8]}"
        dsn = create_database(name)
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(SCHEMA)
        container = f"scale-target-{uuid.uuid4().hex[:8]}"
        self.blob_service.create_container(container)
        target = Dataset(name, dsn, container, "docs/", {}, 1)
        return self.register(target, namespace, state="Stopped"), target

    def prune_one(self, environment_id: str, backup_id: str, namespace: str) -> None:
        self.services.backups.delete(environment_id, backup_id, ACTOR)
        self.services.pruning.prune({namespace})

    def archive(self, environment_id: str, backup_id: str) -> None:
        """Build the backup's Full Snapshot archive (the download's preparation)."""
        self.services.downloads.request(environment_id, backup_id, DataType.FILES_AND_DATABASE, ACTOR)
        self.harness.drain()
        ready = self.services.downloads.status(environment_id, backup_id, DataType.FILES_AND_DATABASE)
        if ready.status != "Ready":
            raise RuntimeError(f"download failed: {ready.operation.error}")

    def remove_round(self, target_container: str) -> None:
        """Housekeeping after a round (untimed): what the round stored — its backups, their content, its
        archive — its restore's target and the baselines' copies go, so that the next round meets the Azurite
        this one met. Whole containers, since Azurite deletes blobs one request at a time at about a hundred
        a second; the stores' containers are made again empty (each round has a namespace of its own)."""
        stores = self.services.stores
        for store in (stores.archives, stores.backups, stores.content):
            self.blob_service.delete_container(store.container_name)
        self.blob_service.delete_container(target_container)
        self.remove_containers()
        provision(self.services.clients)


def tar_czf(directory: Path) -> None:
    """The archive baseline: GNU tar and gzip at its default level, of the same data on local disk."""
    subprocess.run(["sync"], check=False)
    subprocess.run(["tar", "czf", str(directory.with_suffix(".tar.gz")), "-C", str(directory), "."], check=True)
    directory.with_suffix(".tar.gz").unlink()


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda run: run["seconds"])
    middle = ordered[len(ordered) // 2]
    return {
        "seconds": round(statistics.median(run["seconds"] for run in runs), 3),
        "runs": [round(run["seconds"], 3) for run in runs],
        "transactions": middle["transactions"],
        "peakRssMiB": max(run["peakRssMiB"] for run in runs),
        "peakGrowthMiB": max(run["peakGrowthMiB"] for run in runs),
        "storageCores": middle.get("storageCores"),
        "processCores": middle.get("processCores"),
        "waitedForIdleStorageSeconds": [run.get("waitedForIdleStorageSeconds", 0.0) for run in runs],
    }


def run_size(scale: Scale, files: int, rows: int, repeat: int, *, mixed: bool = False) -> dict[str, Any]:
    """One size: ``files`` small file documents (1-4 KB), or with ``mixed`` the mixed-size set (2 KB-4 MB)."""
    sizes = file_sizes if mixed else small_sizes
    label = f"mixed {files}" if mixed else str(files)
    print(f"[{label}] generating {rows} rows and {files} file documents …", flush=True)
    mirror = scale.work_dir / f"layout-{files}"
    dataset = generate_dataset(scale.services, rows=rows, files=0)
    add_files(scale.services, dataset, sizes(files, seed=files), mirror=mirror)
    dump_file = scale.work_dir / f"dump-{files}.backup"
    with dump_file.open("wb") as out:
        subprocess.run(pg_dump_command(dataset.database), stdout=out, check=True)
    cleanup: list[str] = []
    names = ("copyBaseline", "dumpBaseline", "restoreBaseline", "archiveBaseline")
    runs: dict[str, list[dict[str, Any]]] = {
        name: [] for name in (*names, "full", "second", "restore", "prune", "archive")
    }
    try:
        for round_number in range(repeat):
            step = f"[{label}] round {round_number + 1}"
            print(f"{step}: baselines …", flush=True)
            runs["copyBaseline"].append(scale.measure(lambda: scale.copy_baseline(dataset))[1])
            runs["dumpBaseline"].append(scale.measure(lambda: scale.dump_into_blob(dataset.database))[1])
            runs["restoreBaseline"].append(scale.measure(lambda: scale.restore_baseline(dump_file, dataset))[1])
            scale.remove_containers()
            namespace = f"scale-{files}-{round_number}-{uuid.uuid4().hex[:4]}"
            environment_id = scale.register(dataset, namespace)
            print(f"{step}: full backup …", flush=True)
            first, figures = scale.measure(lambda: scale.backup(environment_id))  # noqa: B023
            runs["full"].append(figures)
            new_files = sizes(max(1, files // 100), seed=1000 + round_number)
            add_files(scale.services, dataset, new_files, mirror=mirror)
            print(f"{step}: second backup after 1 % new files …", flush=True)
            second, figures = scale.measure(lambda: scale.backup(environment_id))  # noqa: B023
            runs["second"].append(figures)
            target_id, target = scale.empty_target(namespace)
            cleanup.append(target.database)
            print(f"{step}: restore into another environment …", flush=True)
            runs["restore"].append(scale.measure(lambda: scale.restore(environment_id, second, target_id))[1])  # noqa: B023
            print(f"{step}: prune of one backup …", flush=True)
            runs["prune"].append(scale.measure(lambda: scale.prune_one(environment_id, first, namespace))[1])  # noqa: B023
            print(f"{step}: archive build, and tar czf of the same data …", flush=True)
            _, figures = scale.measure(lambda: scale.archive(environment_id, second))  # noqa: B023
            runs["archive"].append(figures)
            (mirror / "db").mkdir(exist_ok=True)
            with (mirror / "db" / "db.backup").open("wb") as out:
                subprocess.run(pg_dump_command(dataset.database), stdout=out, check=True)
            (mirror / METADATA).write_text('{"modelVersion": "1.0.0"}')
            runs["archiveBaseline"].append(scale.measure(lambda: tar_czf(mirror))[1])
            backup = scale.services.backup_catalog.get(environment_id, second)
            scale.remove_round(target.container)
        result: dict[str, Any] = {
            "files": files,
            "fileSizes": "2 KB-4 MB, log-uniform" if mixed else "1-4 KB",
            "filesBytes": backup.files_size,
            "rows": rows,
            "dumpBytes": backup.dump_size,
            "databaseBytes": backup.database_size,
            "repeat": repeat,
            "operations": {name: _median(values) for name, values in runs.items()},
        }
        operations = result["operations"]
        for name in ("copyBaseline", "full", "second", "restore", "restoreBaseline", "archive", "archiveBaseline"):
            operations[name]["secondsPer10kFiles"] = round(operations[name]["seconds"] * 10_000 / files, 3)

        def ratio(numerator: str, denominator: str) -> float:
            return round(operations[numerator]["seconds"] / operations[denominator]["seconds"], 3)

        result["ratios"] = {
            "full_over_copyBaseline": ratio("full", "copyBaseline"),
            "second_over_dumpBaseline": ratio("second", "dumpBaseline"),
            "restore_over_restoreBaseline": ratio("restore", "restoreBaseline"),
            "restore_over_copyBaseline": ratio("restore", "copyBaseline"),
            "archive_over_archiveBaseline": ratio("archive", "archiveBaseline"),
        }
        return result
    finally:
        drop_database(dataset.database)
        for name in cleanup:
            drop_database(name)
        dump_file.unlink(missing_ok=True)
        shutil.rmtree(mirror, ignore_errors=True)


@contextmanager
def scale_harness(work_dir: Path, *, in_memory: bool = True, idle_storage: bool = True) -> Iterator[Scale]:
    storage = azurite.start(work_dir / "azurite", log_file=work_dir / "azurite.log", in_memory=in_memory)
    try:
        meter = StorageMeter()
        harness = Harness(
            storage.connection_string,
            meter=meter,
            APPBACKUPS_COPY_CONCURRENCY=str(COPY_CONCURRENCY),
            APPBACKUPS_DEVELOPMENT_MODE="true",
        )
        provision(harness.services.clients)
        storage_pid = storage.process.pid if storage.process and idle_storage else None
        yield Scale(harness, meter, work_dir, storage_pid)
    finally:
        storage.stop()


def run(
    sizes: list[int],
    *,
    rows: int,
    repeat: list[int],
    work_dir: Path,
    in_memory: bool = True,
    mixed: int | None = None,
    idle_storage: bool = True,
    on_size: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """``repeat`` gives the rounds of each size in turn (its last value for the rest, and the mixed set).
    Each size has an Azurite of its own, so that none inherits what an earlier one left to collect (a
    100k size's uploads once timed out behind the 20k size's deletes). ``on_size`` is given the results
    so far after each size, so that a long run that fails keeps what it measured. ``idle_storage``: each
    measurement waits until Azurite is idle (the suite's smoke run, which checks counts and never times,
    skips it)."""

    def rounds(index: int) -> int:
        return repeat[min(index, len(repeat) - 1)]

    plan = [(files, rounds(index), False) for index, files in enumerate(sizes)]
    if mixed:
        plan.append((mixed, rounds(len(sizes)), True))
    results: list[dict[str, Any]] = []
    for files, size_rounds, is_mixed in plan:
        size_dir = work_dir / f"{'mixed' if is_mixed else 'small'}-{files}"
        size_dir.mkdir(parents=True, exist_ok=True)
        with scale_harness(size_dir, in_memory=in_memory, idle_storage=idle_storage) as scale:
            results.append(run_size(scale, files, rows, size_rounds, mixed=is_mixed))
        if on_size is not None:
            on_size(_summary(results, in_memory))
    return _summary(results, in_memory)


def _summary(results: list[dict[str, Any]], in_memory: bool) -> dict[str, Any]:
    return {
        "benchmark": "scale",
        "machine": {**machine(), "azurite": "in memory" if in_memory else "on disk"},
        "copyConcurrency": COPY_CONCURRENCY,
        "targets": {
            "full_over_copyBaseline": "<= 1.0",
            "second_over_dumpBaseline": "<= 1.15",
            "restore_over_copyBaseline": "<= 1.0",
            "secondsPer10kFiles": "flat across sizes",
            "peakRssMiB": "flat across sizes",
        },
        "sizes": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, nargs="+", default=[20_000])
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--repeat", type=int, nargs="+", default=[3], help="rounds per size, in the order of --files")
    parser.add_argument("--mixed", type=int, help="also the mixed-size set with this many file documents (4000)")
    parser.add_argument("--on-disk", action="store_true", help="Azurite with its data on disk, not in memory")
    parser.add_argument("--output", default="scale")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="appbackups-scale-") as work:
        results = run(
            arguments.files,
            rows=arguments.rows,
            repeat=arguments.repeat,
            work_dir=Path(work),
            in_memory=not arguments.on_disk,
            mixed=arguments.mixed,
            on_size=lambda partial: write_results(arguments.output + "-partial", partial),
        )
    path = write_results(arguments.output, results)
    (path.parent / f"{arguments.output}-partial.json").unlink(missing_ok=True)
    for size in results["sizes"]:
        operations = size["operations"]
        print(
            f"{size['files']:>7} files: "
            + " ".join(f"{name}={figures['seconds']}s" for name, figures in operations.items())
            + " "
            + json.dumps(size["ratios"])
        )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
