"""The physical limits on this machine, and the fraction of each that every operation reaches: `pg_dump -Fc` of
the benchmarks' database into /dev/null and streamed into a blob, Azurite's server-side copy of many small blobs
(16 at a time) and of one large blob, and upload and download of one large blob; each measured in one run,
the median of --repeat rounds. The fractions are taken from the committed results of the other benchmarks
(bench/results/*.json). Method: bench/README.md.

    .venv/bin/python -m bench.limits    # → bench/results/limits.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
from azure.storage.blob import BlobServiceClient

from bench.common import (
    RESULTS,
    STORAGE_HELP,
    LoadWatch,
    azurite_storage,
    create_database,
    create_order_lines,
    drop_database,
    machine,
    pg_dump_command,
    write_results,
)
from bench.scale import small_sizes
from shared.bootstrap import build_services
from shared.config import STORAGE_CONNECTION, Settings
from tools.seed_demo import SCHEMA

MB = 1_000_000
COPY_CONCURRENCY = 16  # as the backup and restore baselines copy
TRANSFER_CONCURRENCY = 4  # as the backup baseline streams its dump


def bench_database(rows: int) -> tuple[str, int]:
    """The database bench.backup and bench.restore dump (generate_dataset's), without file documents; its name
    and its size on disk (pg_database_size, the backups' databaseSize)."""
    name = f"appbackups_bench_limits_{uuid.uuid4().hex[:6]}"
    dsn = create_database(name)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(SCHEMA)
        create_order_lines(connection, rows)
        connection.execute("VACUUM ANALYZE")
        size = connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return name, int(size)


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def dump_into_dev_null(database: str) -> None:
    with open(os.devnull, "wb") as null:
        subprocess.run(pg_dump_command(database), stdout=null, check=True)


def dump_size(database: str) -> int:
    process = subprocess.Popen(pg_dump_command(database), stdout=subprocess.PIPE)
    assert process.stdout is not None
    size = sum(len(piece) for piece in iter(lambda: process.stdout.read(1 << 20), b""))
    if process.wait() != 0:
        raise RuntimeError("pg_dump failed")
    return size


def dump_into_blob(service: BlobServiceClient, container: str, database: str) -> None:
    """As bench.backup's baseline streams it: pg_dump's output uploaded in blocks as it comes."""
    process = subprocess.Popen(pg_dump_command(database), stdout=subprocess.PIPE)
    blob = service.get_blob_client(container, f"dump-{uuid.uuid4().hex[:6]}")
    blob.upload_blob(process.stdout, max_concurrency=TRANSFER_CONCURRENCY)
    if process.wait() != 0:
        raise RuntimeError("pg_dump failed")


def copy_many(service: BlobServiceClient, source: str, names: list[str]) -> None:
    """Every blob of ``names`` copied server-side into a fresh container, 16 at a time, as the backup and
    restore baselines copy (Azurite completes a copy within its account before it answers)."""
    target = f"limits-copy-{uuid.uuid4().hex[:6]}"
    service.create_container(target)
    origin = service.get_container_client(source)
    try:
        with ThreadPoolExecutor(COPY_CONCURRENCY) as pool:
            list(
                pool.map(
                    lambda name: _copied(
                        service.get_blob_client(target, name).start_copy_from_url(origin.get_blob_client(name).url)
                    ),
                    names,
                )
            )
    finally:
        service.delete_container(target)


def _copied(answer: dict[str, Any]) -> None:
    if answer["copy_status"] != "success":
        raise RuntimeError(f"a copy was answered {answer['copy_status']}, not done: this measures finished copies")


def upload(service: BlobServiceClient, container: str, content: bytes) -> str:
    name = f"large-{uuid.uuid4().hex[:6]}"
    service.get_blob_client(container, name).upload_blob(content, max_concurrency=TRANSFER_CONCURRENCY)
    return name


def download(service: BlobServiceClient, container: str, name: str) -> int:
    stream = service.get_blob_client(container, name).download_blob(max_concurrency=TRANSFER_CONCURRENCY)
    return sum(len(chunk) for chunk in stream.chunks())


def measure(connection_string: str, *, rows: int, small_blobs: int, large_mb: int, repeat: int) -> dict[str, Any]:
    """Each limit measured ``repeat`` times in turn; the medians and every run."""
    service = build_services(Settings.from_environ({STORAGE_CONNECTION: connection_string})).clients.blob_service
    print(f"generating {rows} rows …", flush=True)
    database, database_bytes = bench_database(rows)
    container = f"limits-{uuid.uuid4().hex[:6]}"
    service.create_container(container)
    try:
        dump_bytes = dump_size(database)
        sizes = small_sizes(small_blobs, seed=11)
        content = os.urandom(4096)
        small_names = [f"small-{number:06d}" for number in range(small_blobs)]
        with ThreadPoolExecutor(COPY_CONCURRENCY) as pool:
            list(
                pool.map(
                    lambda item: service.get_blob_client(container, item[0]).upload_blob(content[: item[1]]),
                    zip(small_names, sizes, strict=True),
                )
            )
        small_bytes = sum(sizes)
        large = os.urandom(large_mb * MB)
        large_name = upload(service, container, large)
        runs: dict[str, list[float]] = {
            name: [] for name in ("dumpToDevNull", "dumpToBlob", "copySmall", "copyLarge", "upload", "download")
        }
        for round_number in range(repeat):
            runs["dumpToDevNull"].append(timed(lambda: dump_into_dev_null(database)))
            runs["dumpToBlob"].append(timed(lambda: dump_into_blob(service, container, database)))
            runs["copySmall"].append(timed(lambda: copy_many(service, container, small_names)))
            runs["copyLarge"].append(timed(lambda: copy_many(service, container, [large_name])))
            runs["upload"].append(timed(lambda: upload(service, container, large)))
            runs["download"].append(timed(lambda: download(service, container, large_name)))
            print(f"round {round_number + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in runs.items()), flush=True)
    finally:
        service.delete_container(container)
        drop_database(database)
    seconds = {name: statistics.median(values) for name, values in runs.items()}
    large_bytes = large_mb * MB
    return {
        "rows": rows,
        "databaseBytes": database_bytes,
        "dumpBytes": dump_bytes,
        "smallBlobs": small_blobs,
        "smallBlobsBytes": small_bytes,
        "largeBlobBytes": large_bytes,
        "limits": {
            "pgDumpToDevNull": {
                "seconds": round(seconds["dumpToDevNull"], 3),
                "databaseMBps": round(database_bytes / MB / seconds["dumpToDevNull"], 1),
                "dumpMBps": round(dump_bytes / MB / seconds["dumpToDevNull"], 1),
            },
            "pgDumpToBlob": {
                "seconds": round(seconds["dumpToBlob"], 3),
                "databaseMBps": round(database_bytes / MB / seconds["dumpToBlob"], 1),
                "dumpMBps": round(dump_bytes / MB / seconds["dumpToBlob"], 1),
            },
            "copySmallBlobs": {
                "seconds": round(seconds["copySmall"], 3),
                "blobsPerSecond": round(small_blobs / seconds["copySmall"], 1),
                "MBps": round(small_bytes / MB / seconds["copySmall"], 2),
            },
            "copyLargeBlob": {
                "seconds": round(seconds["copyLarge"], 3),
                "MBps": round(large_bytes / MB / seconds["copyLarge"], 1),
            },
            "upload": {"seconds": round(seconds["upload"], 3), "MBps": round(large_bytes / MB / seconds["upload"], 1)},
            "download": {
                "seconds": round(seconds["download"], 3),
                "MBps": round(large_bytes / MB / seconds["download"], 1),
            },
        },
        "runs": {name: [round(value, 3) for value in values] for name, values in runs.items()},
    }


def _fraction(reached: float, limit: float) -> float:
    return round(reached / limit, 3)


def fractions(limits: dict[str, Any], directory: Path = RESULTS) -> list[dict[str, Any]]:
    """What each operation of the committed results reaches, against the limit it is bound by: one entry per
    (operation, limit) with the rate reached, the limit's rate and their ratio. Results not committed are
    left out, and so is bench.scale: its Azurite holds its data in memory, this one on disk as bench.backup's,
    bench.restore's and bench.archive's do. A file copy is held to the small-blob copy rate whatever the file's
    size: Azurite copies a blob within its account by reference, in the same time whatever its size (the
    large-blob copy shows it), so its limit is requests, not bytes."""

    def load(name: str) -> dict[str, Any] | None:
        path = directory / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    dump_null, dump_blob = limits["pgDumpToDevNull"], limits["pgDumpToBlob"]
    small = limits["copySmallBlobs"]
    entries: list[dict[str, Any]] = []

    def entry(operation: str, source: str, measure: str, reached: float, limit_name: str, limit: float) -> None:
        entries.append(
            {
                "operation": operation,
                "source": source,
                "measure": measure,
                "reached": round(reached, 2),
                "limit": limit_name,
                "limitValue": limit,
                "fraction": _fraction(reached, limit),
            }
        )

    if (backup := load("backup")) is not None:
        for label in ("small", "large"):
            size = backup[label]
            seconds = size["b_fullBackupSeconds"]
            name = f"Full backup, {size['rows']:,} rows and {size['files']:,} files"
            source = f"backup.json {label}"
            entry(
                name,
                source,
                "database MB/s",
                size["databaseBytes"] / MB / seconds,
                "pgDumpToDevNull",
                dump_null["databaseMBps"],
            )
            entry(name, source, "files/s", size["b_filesCopied"] / seconds, "copySmallBlobs", small["blobsPerSecond"])
            entry(
                name,
                source,
                "database MB/s",
                size["databaseBytes"] / MB / seconds,
                "pgDumpToBlob",
                dump_blob["databaseMBps"],
            )
            entry(
                f"`pg_dump -Fc` into a blob (bench.backup d), {size['rows']:,} rows",
                source,
                "database MB/s",
                size["databaseBytes"] / MB / size["d_dumpAloneSeconds"],
                "pgDumpToBlob",
                dump_blob["databaseMBps"],
            )
    if (restore := load("restore")) is not None:
        seconds = restore["restoreSeconds"]
        name = f"Restore, {restore['rows']:,} rows and {restore['files']:,} files"
        entry(name, "restore.json", "files/s", restore["files"] / seconds, "copySmallBlobs", small["blobsPerSecond"])
    if (archive := load("archive")) is not None:
        name = f"Download archive, {archive['inputBytes'] / MB:,.0f} MB in"
        entry(
            name,
            "archive.json",
            "MB/s",
            archive["inputBytes"] / MB / archive["downloadSeconds"],
            "download",
            limits["download"]["MBps"],
        )
        name = f"Upload ingest, {archive['inputBytes'] / MB:,.0f} MB in"
        entry(
            name,
            "archive.json",
            "MB/s",
            archive["inputBytes"] / MB / archive["uploadIngestSeconds"],
            "upload",
            limits["upload"]["MBps"],
        )
    return entries


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_500_000, help="the database's rows (bench.backup's small set)")
    parser.add_argument("--small-blobs", type=int, default=2000, help="the small (1-4 KB) blobs copied")
    parser.add_argument("--large-mb", type=int, default=256, help="the large blob's size, in MB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, default=None, help="where to write (bench/results/limits.json)")
    parser.add_argument("--storage", default=None, help=STORAGE_HELP)
    arguments = parser.parse_args(argv)
    watch = LoadWatch()
    with (
        tempfile.TemporaryDirectory(prefix="appbackups-limits-") as work,
        azurite_storage(Path(work), arguments.storage) as storage,
    ):
        measured = measure(
            storage,
            rows=arguments.rows,
            small_blobs=arguments.small_blobs,
            large_mb=arguments.large_mb,
            repeat=arguments.repeat,
        )
    results = {
        "benchmark": "limits",
        "machine": machine(),
        "loadAverage": watch.figures(),
        "repeat": arguments.repeat,
        "copyConcurrency": COPY_CONCURRENCY,
        "transferConcurrency": TRANSFER_CONCURRENCY,
        **measured,
    }
    results["fractions"] = fractions(results["limits"])
    path = write_results("limits", results, arguments.results)
    for name, figures in results["limits"].items():
        print(f"{name}: {figures}")
    print(f"written to {path}")
    return results


if __name__ == "__main__":
    main()
