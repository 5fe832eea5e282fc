"""Deduplicated dumps: 14 nightly backups of a changing database, chunked against one dump blob per backup,
in storage and time, side by side in one run. Method: bench/README.md."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import psycopg
import requests
import zstandard

from bench.common import (
    LoadWatch,
    azurite_storage,
    bench_parser,
    create_database,
    create_order_lines,
    drop_database,
    generate_dataset,
    machine,
    peak_rss_mib,
    peak_rss_reset,
    write_results,
)
from shared.backups.layout import MANIFEST, backup_folder
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import Principal
from shared.domain.backups import Backup
from shared.domain.downloads import DataType
from shared.domain.operations import OperationStatus
from shared.dumps.chunker import chunks_of
from shared.dumps.reader import DUMP
from shared.dumps.store import LEVEL
from tests.support.restoring import Harness
from tools.provision import provision

ADMIN = Principal(id="bench", name="bench")
CHURN = {"update": 0.01, "insert": 0.005, "delete": 0.002}
HOT_SHARE = 0.05


def tables(dsn: str) -> list[str]:
    """The user tables with a bigint or integer primary key `id`, but the file documents."""
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT quote_ident(c.table_schema) || '.' || quote_ident(c.table_name) FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) WHERE c.column_name = 'id' "
            "AND t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema') "
            "AND c.table_name <> 'system$filedocument' ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


def churn(dsn: str, model: str, night: int) -> dict[str, int]:
    """One night's changes, spread over the tables in proportion to their rows."""
    done = {"updated": 0, "inserted": 0, "deleted": 0}
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SELECT setseed(%s)", (night / 100,))
        for table in tables(dsn):
            # Table and column names come from the catalog, quoted by the server (quote_ident).
            count, top = connection.execute(f"SELECT count(*), coalesce(max(id), 0) FROM {table}").fetchone()  # noqa: S608
            if not count:
                continue
            where = f"WHERE id > {top - max(1, int(count * HOT_SHARE))}" if model == "hot-set" else ""
            columns = [
                row[0]
                for row in connection.execute(
                    "SELECT quote_ident(column_name) FROM information_schema.columns "
                    "WHERE quote_ident(table_schema) || '.' || quote_ident(table_name) = %s AND column_name <> 'id'",
                    (table,),
                ).fetchall()
            ]
            pick = f"SELECT id FROM {table} {where} ORDER BY random() LIMIT %s"  # noqa: S608
            updates = max(1, int(count * CHURN["update"]))
            touched = next((c for c in columns if "date" in c), None)
            setting = f"{touched} = now()" if touched else f"{columns[0]} = {columns[0]}" if columns else "id = id"
            done["updated"] += connection.execute(
                f"UPDATE {table} SET {setting} WHERE id IN ({pick})",  # noqa: S608
                (updates,),
            ).rowcount
            done["deleted"] += connection.execute(
                f"DELETE FROM {table} WHERE id IN ({pick})",  # noqa: S608
                (max(1, int(count * CHURN["delete"])),),
            ).rowcount
            inserts = max(1, int(count * CHURN["insert"]))
            listed = ", ".join(columns)
            # New rows: copies of random existing ones under new ids (the table's own shape and sizes).
            done["inserted"] += connection.execute(
                f"INSERT INTO {table} (id{', ' + listed if listed else ''}) SELECT {top} + row_number() OVER ()"  # noqa: S608
                f"{', ' + listed if listed else ''} FROM (SELECT * FROM {table} ORDER BY random() LIMIT %s) s",
                (inserts,),
            ).rowcount
        connection.execute("VACUUM")  # as autovacuum would between two nights: freed space is reused
    return done


class ChunkCounter:
    """Counts what chunked storage of a series of dumps would take: new chunks, zstd-compressed."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self.stored = 0
        self._compressor = zstandard.ZstdCompressor(level=LEVEL)

    def add(self, dump: bytes) -> int:
        new = 0
        for chunk in chunks_of(iter([dump])):
            key = hashlib.sha256(chunk).digest()
            if key not in self.seen:
                self.seen.add(key)
                new += len(self._compressor.compress(chunk))
        self.stored += new
        return new


def pg_dump(database: str, *options: str) -> bytes:
    command = ["pg_dump", "-Fc", "-O", "-x", *options, "-h", "127.0.0.1", "-U", "postgres", database]
    return subprocess.run(command, check=True, capture_output=True).stdout


def register(harness: Harness, environment_id: str, namespace: str, database: str, container: str, state: str) -> None:
    body = {
        "namespace": namespace,
        "appName": "bench",
        "displayName": environment_id,
        "state": state,
        "database": {"host": "127.0.0.1", "database": database, "user": "postgres"},
        "files": {"container": container, "prefix": "docs/"},
        "modelVersion": "1.0.0",
    }
    harness.services.environments.put(environment_id, EnvironmentBody.model_validate(body).to_registration(), ADMIN)


def timed_backup(harness: Harness, environment_id: str) -> tuple[float, float, Backup]:
    peak_rss_reset_self()
    started = time.perf_counter()
    backup_id = harness.backup(environment_id, ADMIN)
    seconds = time.perf_counter() - started
    backup = harness.services.backup_catalog.get(environment_id, backup_id)
    if backup.status.value != "Finished":
        raise RuntimeError(f"backup failed: {backup.status_message}")
    return seconds, peak_rss_self(), backup


def peak_rss_reset_self() -> None:
    peak_rss_reset(os.getpid())


def peak_rss_self() -> float:
    return peak_rss_mib(os.getpid())


def stored_bytes(harness: Harness, prefix: str) -> int:
    return sum(blob.size for blob in harness.services.stores.content.list(prefix, page_size=5000))


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def restore_once(harness: Harness, backup: Backup, namespace: str) -> float:
    """Into a fresh Stopped environment: an empty database, an empty file container."""
    database = f"appbackups_bench_target_{uuid.uuid4().hex[:6]}"
    create_database(database)
    container = f"bench-target-{uuid.uuid4().hex[:6]}"
    harness.services.clients.blob_service.create_container(container)
    target = f"bench-target-{uuid.uuid4().hex[:6]}"
    register(harness, target, namespace, database, container, "Stopped")
    try:

        def run() -> None:
            operation = harness.services.restores.request(backup.environment_id, backup.id, target, ADMIN)
            harness.drain()
            done = harness.services.restores.get(operation.id)
            if done.status is not OperationStatus.FINISHED:
                raise RuntimeError(f"restore failed: {done.error}")

        return timed(run)
    finally:
        drop_database(database)
        harness.services.clients.blob_service.delete_container(container)


def download_once(harness: Harness, backup: Backup, data_type: DataType) -> tuple[float, int]:
    """Prepare the download and fetch it whole; the seconds and its size."""
    result = {}

    def run() -> None:
        harness.services.downloads.request(backup.environment_id, backup.id, data_type, ADMIN)
        harness.drain()
        ready = harness.services.downloads.status(backup.environment_id, backup.id, data_type)
        if ready.status != "Ready":
            raise RuntimeError(f"download failed: {ready.operation.error}")
        with requests.get(ready.url, timeout=600, stream=True) as response:
            response.raise_for_status()
            result["size"] = sum(len(piece) for piece in response.iter_content(1024 * 1024))
        # Forget it, so that the next request prepares it again.
        harness.services.backup_catalog.update(
            backup.environment_id,
            backup.id,
            lambda current: replace(current, downloads={}, latest_download=None),
        )

    return timed(run), result["size"]


def uniform_model(rows: int, nights: int) -> dict:
    """The uniform churn, offline: each night's two dumps chunked here, nothing stored."""
    database = f"appbackups_bench_uniform_{uuid.uuid4().hex[:6]}"
    dsn = create_database(database)
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            create_order_lines(connection, rows)
        uncompressed, compressed = ChunkCounter(), ChunkCounter()
        last = 0
        for night in range(nights):
            if night:
                churn(dsn, "uniform", night)
            compressed_dump = pg_dump(database)
            last = len(compressed_dump)
            compressed.add(compressed_dump)
            uncompressed.add(pg_dump(database, "--compress=0"))
        return {
            "oneDumpBytes": last,
            "storedUncompressedChunks": uncompressed.stored,
            "storedCompressedChunks": compressed.stored,
            "ratioUncompressedChunks": round(uncompressed.stored / last, 3),
            "ratioCompressedChunks": round(compressed.stored / last, 3),
            "ratioToday": nights,
        }
    finally:
        drop_database(database)


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__, rows=300_000, files=200)
    parser.add_argument("--nights", type=int, default=14)
    arguments = parser.parse_args(argv)
    load = LoadWatch()
    nights = arguments.nights
    with (
        tempfile.TemporaryDirectory(prefix="appbackups-bench-") as work,
        azurite_storage(Path(work), arguments.storage) as storage,
    ):
        ours = Harness(storage, APPBACKUPS_COPY_CONCURRENCY="16")
        today = Harness(storage, APPBACKUPS_COPY_CONCURRENCY="16", APPBACKUPS_CHUNKED_DUMPS="false")
        provision(ours.services.clients)
        print(f"generating {arguments.rows} rows and {arguments.files} file documents …", flush=True)
        dataset = generate_dataset(ours.services, rows=arguments.rows, files=arguments.files)
        suffix = uuid.uuid4().hex[:4]
        layouts = {"today": (today, f"bench-today-{suffix}"), "ours": (ours, f"bench-ours-{suffix}")}
        for name, (harness, namespace) in layouts.items():
            register(harness, f"{name}-{suffix}", namespace, dataset.database, dataset.container, "Running")
        try:
            results = run(arguments, dataset, layouts, suffix, nights)
        finally:
            drop_database(dataset.database)
    print(f"uniform churn, offline ({arguments.rows} rows, {nights} nights) …", flush=True)
    results["uniformModel"] = uniform_model(arguments.rows, nights)
    results["loadAverage"] = load.figures()
    path = write_results("dedup", results, arguments.results)
    summary = results["storage"]
    print(
        f"storage of {nights} nights' dumps / one dump: today {summary['ratioToday']}, uncompressed chunks "
        f"{summary['ratioOurs']}, compressed chunks {summary['ratioCompressedChunks']}; uniform churn: "
        f"{results['uniformModel']['ratioUncompressedChunks']} / {results['uniformModel']['ratioCompressedChunks']}"
    )
    times = results["seconds"]
    print(
        f"backup {times['backupOurs']} s vs {times['backupToday']} s (ratio {results['ratios']['backup']}); "
        f"restore {results['ratios']['restore']}; download db {results['ratios']['downloadDatabase']}, "
        f"archive {results['ratios']['downloadArchive']}; db download / pg_dump -Fc alone: "
        f"{results['ratios']['downloadDatabaseOverPgDump']} in time, "
        f"{results['sizes']['databaseDownloadOverPgDump']} in size"
    )
    print(f"written to {path}")
    return results


def run(arguments, dataset, layouts, suffix: str, nights: int) -> dict:  # type: ignore[no-untyped-def]
    backups: dict[str, list[float]] = {"today": [], "ours": []}
    peaks: dict[str, list[float]] = {"today": [], "ours": []}
    backup_list: dict[str, list[Backup]] = {"today": [], "ours": []}
    new_chunk_bytes: list[int] = []
    changes = []
    for night in range(nights):
        if night:
            changes.append(churn(dataset.dsn, "hot-set", night))
        order = ["today", "ours"] if night % 2 == 0 else ["ours", "today"]
        for name in order:
            harness, _ = layouts[name]
            seconds, peak, backup = timed_backup(harness, f"{name}-{suffix}")
            backups[name].append(seconds)
            peaks[name].append(peak)
            backup_list[name].append(backup)
        print(
            f"night {night + 1}: today {backups['today'][-1]:.2f} s, ours {backups['ours'][-1]:.2f} s "
            f"(dump {backup_list['ours'][-1].dump_size} bytes uncompressed, {backup_list['today'][-1].dump_size} "
            f"compressed)",
            flush=True,
        )
    ours, namespace = layouts["ours"]
    today, _ = layouts["today"]
    chunked_stored = stored_bytes(ours, f"{namespace}/packs/") + stored_bytes(ours, f"{namespace}/chunks/")
    today_stored = sum(int(backup.dump_size or 0) for backup in backup_list["today"])
    one_dump = int(backup_list["today"][-1].dump_size or 0)
    # The other way to chunk: pg_dump's compressed output (today's blobs), with the same chunker and zstd.
    compressed_chunks = ChunkCounter()
    for backup in backup_list["today"]:
        folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
        compressed_chunks.add(today.services.stores.backups.read_bytes(folder + DUMP))
    for backup in backup_list["ours"]:
        folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
        manifest = json.loads(ours.services.stores.backups.read_bytes(folder + MANIFEST))
        new_chunk_bytes.append(int(manifest["database"]["newChunkBytes"]))
    last = {name: backup_list[name][-1] for name in backup_list}
    restores: dict[str, list[float]] = {"today": [], "ours": []}
    database_downloads: dict[str, list[float]] = {"today": [], "ours": []}
    archive_downloads: dict[str, list[float]] = {"today": [], "ours": []}
    dumps_alone: list[float] = []  # pg_dump -Fc of the same database: what a database-only download is held to
    download_sizes: dict[str, int] = {}
    for round_number in range(arguments.repeat):
        dumps_alone.append(timed(lambda: pg_dump(dataset.database)))
        order = ["today", "ours"] if round_number % 2 == 0 else ["ours", "today"]
        for name in order:
            harness, space = layouts[name]
            restores[name].append(restore_once(harness, last[name], space))
            seconds, size = download_once(harness, last[name], DataType.DATABASE_ONLY)
            database_downloads[name].append(seconds)
            download_sizes[name] = size
            archive_downloads[name].append(download_once(harness, last[name], DataType.FILES_AND_DATABASE)[0])
        print(f"round {round_number + 1}: restores and downloads done", flush=True)
    plain = len(pg_dump(dataset.database))  # the database as it is after the last night
    median = statistics.median
    return {
        "benchmark": "dedup",
        "machine": machine(),
        "targets": {
            "storage of 14 nights / one dump": "<= 2.5 (today 14)",
            "backup ours / today": "<= 1.0",
            "restore, download ours / today": "<= 1.05",
            "database-only download / pg_dump -Fc": "<= 1.3",
            "worker memory": "flat",
        },
        "rows": arguments.rows,
        "files": arguments.files,
        "nights": nights,
        "churnModel": f"hot-set: per night {CHURN}, updates and deletes on the newest {HOT_SHARE:.0%} of each table",
        "changes": changes,
        "storage": {
            "oneDumpBytes": one_dump,
            "todayBytes": today_stored,
            "oursBytes": chunked_stored,
            "compressedChunksBytes": compressed_chunks.stored,
            "ratioToday": round(today_stored / one_dump, 3),
            "ratioOurs": round(chunked_stored / one_dump, 3),
            "ratioCompressedChunks": round(compressed_chunks.stored / one_dump, 3),
            "uncompressedDumpBytes": int(last["ours"].dump_size or 0),
        },
        "seconds": {
            "backupToday": round(median(backups["today"]), 2),
            "backupOurs": round(median(backups["ours"]), 2),
            "restoreToday": round(median(restores["today"]), 2),
            "restoreOurs": round(median(restores["ours"]), 2),
            "downloadDatabaseToday": round(median(database_downloads["today"]), 2),
            "downloadDatabaseOurs": round(median(database_downloads["ours"]), 2),
            "downloadArchiveToday": round(median(archive_downloads["today"]), 2),
            "downloadArchiveOurs": round(median(archive_downloads["ours"]), 2),
            "pgDumpAlone": round(median(dumps_alone), 2),
        },
        "ratios": {
            "backup": round(median(backups["ours"]) / median(backups["today"]), 3),
            "restore": round(median(restores["ours"]) / median(restores["today"]), 3),
            "downloadDatabase": round(median(database_downloads["ours"]) / median(database_downloads["today"]), 3),
            "downloadDatabaseOverPgDump": round(median(database_downloads["ours"]) / median(dumps_alone), 3),
            "downloadArchive": round(median(archive_downloads["ours"]) / median(archive_downloads["today"]), 3),
        },
        "sizes": {
            "pgDumpBytes": plain,
            "databaseDownloadOurs": download_sizes["ours"],
            "databaseDownloadToday": download_sizes["today"],
            "databaseDownloadOverPgDump": round(download_sizes["ours"] / plain, 3),
        },
        "memory": {
            "peakRssMiBToday": round(median(peaks["today"]), 1),
            "peakRssMiBOurs": round(median(peaks["ours"]), 1),
            "peakRssMiBOursFirstNight": round(peaks["ours"][0], 1),
            "peakRssMiBOursLastNight": round(peaks["ours"][-1], 1),
        },
        "runs": {
            "backupToday": [round(value, 2) for value in backups["today"]],
            "backupOurs": [round(value, 2) for value in backups["ours"]],
            "restoreToday": [round(value, 2) for value in restores["today"]],
            "restoreOurs": [round(value, 2) for value in restores["ours"]],
            "downloadDatabaseToday": [round(value, 2) for value in database_downloads["today"]],
            "downloadDatabaseOurs": [round(value, 2) for value in database_downloads["ours"]],
            "pgDumpAlone": [round(value, 2) for value in dumps_alone],
            "downloadArchiveToday": [round(value, 2) for value in archive_downloads["today"]],
            "downloadArchiveOurs": [round(value, 2) for value in archive_downloads["ours"]],
            "storedChunkBytesPerSnapshotOurs": new_chunk_bytes,
        },
    }


if __name__ == "__main__":
    main()
