"""Point-in-time benchmark (issue 26 §5): a restore to a point in time through the product against the same
restore by hand with barman-cloud, what WAL archiving costs a steady pgbench load, how much WAL it stores,
and the recovery point under that load — in one run. Method: bench/README.md."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from azure.storage.blob import BlobServiceClient
from psycopg import sql

from bench.common import (
    LoadWatch,
    azurite_storage,
    create_database,
    create_order_lines,
    drop_database,
    file_sizes,
    machine,
    write_results,
)
from shared.adapters.pointintime.barman import free_port
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import SYSTEM, Principal
from shared.domain.operations import OperationStatus
from tests.support.archiving import archived_cluster
from tests.support.restoring import Harness
from tools.archiving_cluster import POSTGRES_BIN, ArchivingCluster, as_postgres, chown_to_postgres, processes_in
from tools.provision import provision
from tools.seed_demo import SCHEMA

ADMIN = Principal(id="bench", name="bench")
SOURCE_DATABASE = "app"
LOAD_DATABASE = "pgbench"
BARMAN_PROVIDER = ("--cloud-provider", "azure-blob-storage")
TARGETS = {"ratio": "<= 1.2", "tpsRatio": ">= 0.95", "recoveryPointP99Seconds": "<= 60"}


# -- the source: an environment on a cluster archiving to Azurite ------------------------------------------
@dataclass
class Source:
    environment_id: str
    namespace: str
    container: str
    files_bytes: int


def clock(cluster: ArchivingCluster) -> datetime:
    with cluster.connect() as connection:
        row = connection.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]


def create_source(harness: Harness, cluster: ArchivingCluster, *, rows: int, files: int) -> Source:
    """The app's database on the archived cluster (order lines and file documents, as bench.common's dataset),
    registered with point-in-time recovery, its file documents captured as the capture timer would."""
    with cluster.connect() as connection:
        connection.execute(f"CREATE DATABASE {SOURCE_DATABASE}")
    with cluster.connect(SOURCE_DATABASE) as connection:
        connection.execute(SCHEMA)
        create_order_lines(connection, rows)
        connection.execute("CREATE TABLE ticks (id integer PRIMARY KEY, at timestamptz NOT NULL)")
    services = harness.services
    suffix = uuid.uuid4().hex[:8]
    container = services.clients.blob_service.get_container_client(f"pitr-files-{suffix}")
    container.create_container()
    chunk = os.urandom(4 * 1024 * 1024)
    documents = [(str(uuid.uuid4()), size) for size in file_sizes(files, seed=26)]

    def upload(item: tuple[str, int]) -> None:
        file_uuid, size = item
        container.upload_blob(f"docs/{file_uuid}", chunk[:size] + file_uuid.encode())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(upload, documents))
    with cluster.connect(SOURCE_DATABASE) as connection, connection.cursor() as cursor:
        cursor.executemany(
            'INSERT INTO "system$filedocument" (id, "__uuid__", name, size, hascontents) VALUES (%s, %s, %s, %s, true)',
            [(number, file_uuid, f"file-{number}", size + 36) for number, (file_uuid, size) in enumerate(documents, 1)],
        )
    namespace = f"bench-pitr-{suffix[:4]}"
    environment_id = f"bench-pitr-source-{suffix}"
    body = {
        "namespace": namespace,
        "appName": "bench",
        "displayName": environment_id,
        "state": "Running",
        "database": {
            "host": str(cluster.directory),
            "port": cluster.port,
            "database": SOURCE_DATABASE,
            "user": "postgres",
        },
        "files": {"container": container.container_name, "prefix": "docs/"},
        "modelVersion": "1.0.0",
        "pointInTime": {"server": cluster.server},
    }
    services.environments.put(environment_id, EnvironmentBody.model_validate(body).to_registration(), SYSTEM)
    services.captures.capture(services.environments.get(environment_id))
    return Source(environment_id, namespace, container.container_name, sum(size + 36 for _, size in documents))


def tick(cluster: ArchivingCluster, number: int) -> None:
    with cluster.connect(SOURCE_DATABASE) as connection:
        connection.execute("INSERT INTO ticks VALUES (%s, clock_timestamp())", (number,))


def prepare_instant(cluster: ArchivingCluster) -> datetime:
    """A base backup, then an instant between two commits, its WAL archived: what both restores go back to."""
    cluster.base_backup()
    tick(cluster, 1)
    time.sleep(0.2)
    instant = clock(cluster)
    time.sleep(0.2)
    tick(cluster, 2)  # recovery to a time stops at the first commit after it
    cluster.wait_archived(cluster.switch_wal())
    return instant


def restored_rows(connection: psycopg.Connection) -> dict[str, int]:
    counts = {}
    for table in ("sales$orderline", "system$filedocument", "ticks"):
        row = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        assert row is not None
        counts[table] = int(row[0])
    return counts


# -- ours: the use case, as bench.restore drives it ---------------------------------------------------------
def restore_through_product(harness: Harness, source: Source, instant: datetime) -> tuple[float, dict[str, int]]:
    """A restore to ``instant`` into a fresh Stopped environment (an empty database on the shared PostgreSQL
    and an empty file container): request_to_time, then the operation run to its end."""
    services = harness.services
    database = f"appbackups_bench_pitr_{uuid.uuid4().hex[:6]}"
    create_database(database)
    container = f"bench-pitr-target-{uuid.uuid4().hex[:6]}"
    services.clients.blob_service.create_container(container)
    target = f"bench-pitr-target-{uuid.uuid4().hex[:6]}"
    body = {
        "namespace": source.namespace,
        "appName": "bench",
        "displayName": target,
        "state": "Stopped",
        "database": {"host": "127.0.0.1", "database": database, "user": "postgres"},
        "files": {"container": container, "prefix": "docs/"},
        "modelVersion": "1.0.0",
    }
    services.environments.put(target, EnvironmentBody.model_validate(body).to_registration(), SYSTEM)
    try:
        started = time.perf_counter()
        operation = services.restores.request_to_time(source.environment_id, instant, target, ADMIN)
        harness.drain()
        elapsed = time.perf_counter() - started
        done = services.restores.get(operation.id)
        if done.status is not OperationStatus.FINISHED:
            raise RuntimeError(f"restore to {instant.isoformat()} failed: {done.error}")
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname=database, autocommit=True) as connection:
            counts = restored_rows(connection)
        counts["files"] = sum(1 for _ in services.clients.blob_service.get_container_client(container).list_blobs())
        return elapsed, counts
    finally:
        drop_database(database)
        services.clients.blob_service.delete_container(container)


# -- the baseline: barman-cloud by hand ---------------------------------------------------------------------
def barman_tool(cluster: ArchivingCluster, name: str, *arguments: str) -> list[str]:
    return [f"/usr/bin/{name}", *BARMAN_PROVIDER, cluster.archive.url, cluster.server, *arguments]


def stop_instance(data: Path) -> None:
    subprocess.run(
        as_postgres([str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
        capture_output=True,
        check=False,
    )


def restore_by_hand(
    cluster: ArchivingCluster, service: BlobServiceClient, source: Source, instant: datetime
) -> tuple[float, dict[str, int]]:
    """What an operator would script: barman-cloud-restore of the base backup into a scratch directory,
    recovery_target_time with barman-cloud-wal-restore as restore_command, start, wait for the promotion,
    then pg_dump | pg_restore into the target database while the file documents the restored database refers
    to are copied (server-side, 16 at a time) from the app's container into the target's."""
    backup = cluster.archive.archive(cluster.server).backup_before(instant)
    assert backup is not None
    directory = cluster.directory / f"by-hand-{uuid.uuid4().hex[:6]}"
    directory.mkdir(mode=0o700)
    chown_to_postgres(directory)
    data = directory / "data"
    database = f"appbackups_bench_byhand_{uuid.uuid4().hex[:6]}"
    create_database(database)
    target_container = f"bench-byhand-{uuid.uuid4().hex[:6]}"
    service.create_container(target_container)
    port = free_port()
    environment = {**os.environ, **cluster.archive.tool_environment()}
    try:
        started = time.perf_counter()
        subprocess.run(
            as_postgres(barman_tool(cluster, "barman-cloud-restore", backup.id, str(data))),
            cwd=directory,
            env=environment,
            check=True,
            capture_output=True,
        )
        restore_command = " ".join(barman_tool(cluster, "barman-cloud-wal-restore", "%f", "%p"))
        settings = {
            "restore_command": restore_command,
            "recovery_target_time": instant.isoformat(sep=" "),
            "recovery_target_action": "promote",
            "archive_mode": "off",
            "port": str(port),
            "listen_addresses": "",
            "unix_socket_directories": str(directory),
        }
        with open(data / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())
        (data / "recovery.signal").touch()
        chown_to_postgres(data / "recovery.signal")
        log = directory / "server.log"
        log.touch()
        chown_to_postgres(log)
        subprocess.run(
            as_postgres([str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "3600", "start"]),
            cwd=directory,
            env=environment,
            check=True,
            capture_output=True,
        )
        conninfo = {"host": str(directory), "port": port, "user": "postgres", "autocommit": True}
        while True:
            with psycopg.connect(**conninfo, dbname=SOURCE_DATABASE) as connection:  # type: ignore[arg-type]
                row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
                if row is not None and not row[0]:
                    uuids = [row[0] for row in connection.execute('SELECT "__uuid__" FROM "system$filedocument"')]
                    break
            time.sleep(0.1)
        source_container = service.get_container_client(source.container)

        def copy(file_uuid: str) -> None:
            url = source_container.get_blob_client(f"docs/{file_uuid}").url
            service.get_blob_client(target_container, f"docs/{file_uuid}").start_copy_from_url(url)

        with ThreadPoolExecutor(16) as pool:
            copies = [pool.submit(copy, file_uuid) for file_uuid in uuids]
            dump = subprocess.Popen(
                [
                    "pg_dump",
                    "-Fc",
                    "-O",
                    "-x",
                    "-h",
                    str(directory),
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                    SOURCE_DATABASE,
                ],
                stdout=subprocess.PIPE,
            )
            load = subprocess.run(
                ["pg_restore", "--no-owner", "--no-privileges", "-h", "127.0.0.1", "-U", "postgres", "-d", database],
                stdin=dump.stdout,
                capture_output=True,
                check=False,
            )
            if dump.wait() != 0 or load.returncode != 0:
                raise RuntimeError(f"pg_dump | pg_restore failed: {load.stderr.decode(errors='replace')[-500:]}")
            for future in copies:
                future.result()
        elapsed = time.perf_counter() - started
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname=database, autocommit=True) as connection:
            counts = restored_rows(connection)
        counts["files"] = sum(1 for _ in service.get_container_client(target_container).list_blobs())
        return elapsed, counts
    finally:
        if data.exists():
            stop_instance(data)
        for pid in processes_in(directory):
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        shutil.rmtree(directory, ignore_errors=True)
        drop_database(database)
        service.delete_container(target_container)


# -- the load: pgbench at a fixed rate ----------------------------------------------------------------------
def pgbench(cluster: ArchivingCluster, *arguments: str) -> str:
    command = [str(POSTGRES_BIN / "pgbench"), "-h", str(cluster.directory), "-p", str(cluster.port), "-U", "postgres"]
    result = subprocess.run([*command, *arguments, LOAD_DATABASE], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pgbench {' '.join(arguments)} failed: {result.stderr[-1000:]}")
    return result.stdout


def init_load(cluster: ArchivingCluster, scale: int) -> None:
    with cluster.connect() as connection:
        connection.execute(f"CREATE DATABASE {LOAD_DATABASE}")
    pgbench(cluster, "-i", "-q", "-s", str(scale))


def without_archiving(cluster: ArchivingCluster) -> None:
    """The same cluster's settings with archive_mode off (a restart): the load's baseline."""
    with cluster.connect() as connection:
        connection.execute("ALTER SYSTEM SET archive_mode = off")
    subprocess.run(
        as_postgres(
            [
                str(POSTGRES_BIN / "pg_ctl"),
                "-D",
                str(cluster.data),
                "-l",
                str(cluster.directory / "server.log"),
                "-w",
                *("-m", "fast", "restart"),
            ]
        ),
        cwd=cluster.data,
        check=True,
        capture_output=True,
    )


def archived_wal(service: BlobServiceClient, container: str, server: str) -> tuple[int, int]:
    """The WAL segments stored in the archive and their bytes (barman stores them gzip-compressed)."""
    blobs = [
        blob
        for blob in service.get_container_client(container).list_blobs(name_starts_with=f"barman/{server}/wals/")
        if re.fullmatch(r"[0-9A-F]{24}(\.gz)?", blob.name.rsplit("/", 1)[-1])
    ]
    return len(blobs), sum(blob.size for blob in blobs)


def wal_lsn(cluster: ArchivingCluster) -> int:
    with cluster.connect() as connection:
        row = connection.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    assert row is not None
    return int(row[0])


def run_load(cluster: ArchivingCluster, *, rate: int, seconds: int, clients: int) -> dict[str, float]:
    lsn = wal_lsn(cluster)
    output = pgbench(cluster, "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-R", str(rate), "-T", str(seconds))
    tps = re.search(r"tps = ([0-9.]+)", output)
    latency = re.search(r"latency average = ([0-9.]+) ms", output)
    processed = re.search(r"number of transactions actually processed: (\d+)", output)
    if tps is None or latency is None or processed is None:
        raise RuntimeError(f"pgbench's output was not understood:\n{output}")
    return {
        "tps": round(float(tps.group(1)), 2),
        "latencyMs": round(float(latency.group(1)), 3),
        "transactions": int(processed.group(1)),
        "walBytes": wal_lsn(cluster) - lsn,
    }


class RecoveryPointSampler:
    """The recovery point (now - the window's latest instant, as the product reads it) every few seconds while
    a phase with archiving runs. A sample counts as steady once the archive holds a commit of that phase: before
    that, the lag is the idle time before the phase (the cluster writes nothing while its twin is loaded)."""

    def __init__(self, harness: Harness, environment_id: str, every: float) -> None:
        self._harness = harness
        self._environment_id = environment_id
        self._every = every
        self._stop = threading.Event()
        self._phase_started = (time.monotonic(), datetime.now(UTC))
        self.samples: list[tuple[float, float, bool]] = []  # seconds into the phase, recovery point, steady
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started, started_on = self._phase_started
        while not self._stop.wait(self._every):
            try:
                window = self._harness.services.past.window(self._environment_id)
            except Exception as error:  # a failed read is recorded; the load goes on
                self.errors.append(f"{type(error).__name__}: {error}")
                continue
            seconds, latest = window.recovery_point_seconds, window.window.latest
            if seconds is not None and latest is not None:
                self.samples.append((round(time.monotonic() - started, 1), seconds, latest >= started_on))

    @property
    def steady(self) -> list[float]:
        return [seconds for _, seconds, steady in self.samples if steady]

    @contextlib.contextmanager
    def running(self, *, continued: bool = False) -> Iterator[None]:
        """Sample while the phase runs; ``continued``: it follows a phase with archiving straight away, so the
        archive holds the load's commits from its start (only its offsets start again)."""
        steady_from = self._phase_started[1] if continued else datetime.now(UTC)
        self._phase_started = (time.monotonic(), steady_from)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join()


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(-(-share * len(ordered) // 1)) - 1))]


def phase_seconds(total: int, phases: int) -> list[int]:
    base, rest = divmod(total, phases)
    return [base + (1 if index < rest else 0) for index in range(phases)]


# -- the run ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def clusters(connection_string: str, archive_timeout: int) -> Iterator[tuple[ArchivingCluster, ArchivingCluster]]:
    """The archived cluster, and its twin without archiving (the load's baseline), each archive in a container
    of its own."""
    service = BlobServiceClient.from_connection_string(connection_string)
    suffix = uuid.uuid4().hex[:8]
    names = (f"pitr-bench-{suffix}", f"pitr-bench-off-{suffix}")
    for name in names:
        service.create_container(name)
    with (
        archived_cluster(connection_string, names[0], archive_timeout=archive_timeout, server="pitr-bench") as on,
        archived_cluster(connection_string, names[1], archive_timeout=archive_timeout, server="pitr-bench-off") as off,
    ):
        without_archiving(off)
        yield on, off


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=300_000, help="order lines in the app's database")
    parser.add_argument("--files", type=int, default=200, help="file documents of the app")
    parser.add_argument("--rounds", type=int, default=3, help="restore rounds (each: by hand, then ours)")
    parser.add_argument("--seconds", type=int, default=120, help="seconds of load with archiving (and without)")
    parser.add_argument("--load-rounds", type=int, default=2, help="interleaved pairs the load is split into")
    parser.add_argument("--rate", type=int, default=100, help="pgbench's fixed rate, transactions per second")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--scale", type=int, default=5, help="pgbench's scale factor")
    parser.add_argument("--archive-timeout", type=int, default=30, help="the archived server's (the default: 30 s)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between recovery point samples")
    parser.add_argument("--results", type=Path, default=None, help="default: bench/results/pitr.json")
    parser.add_argument("--storage", default=None, help="a running Azurite's connection string (default: its own)")
    arguments = parser.parse_args(argv)
    load = LoadWatch()
    with (
        tempfile.TemporaryDirectory(prefix="appbackups-bench-pitr-") as work,
        contextlib.ExitStack() as stack,
    ):
        connection_string = stack.enter_context(azurite_storage(Path(work), arguments.storage))
        archived, plain = stack.enter_context(clusters(connection_string, arguments.archive_timeout))
        harness = Harness(connection_string, point_in_time=archived.archive)
        provision(harness.services.clients)
        service = harness.services.clients.blob_service
        archive_container = archived.archive.url.rsplit("/", 2)[-2]
        print(f"source: {arguments.rows} rows, {arguments.files} file documents …", flush=True)
        source = create_source(harness, archived, rows=arguments.rows, files=arguments.files)
        instant = prepare_instant(archived)
        by_hand_runs, our_runs, counts = [], [], []
        for round_number in range(arguments.rounds):
            seconds, restored = restore_by_hand(archived, service, source, instant)
            by_hand_runs.append(seconds)
            counts.append(restored)
            print(f"round {round_number + 1}: by hand {seconds:.2f}s {restored}", flush=True)
            seconds, restored = restore_through_product(harness, source, instant)
            our_runs.append(seconds)
            counts.append(restored)
            print(f"round {round_number + 1}: restore to time {seconds:.2f}s {restored}", flush=True)
        if any(restored != counts[0] for restored in counts):
            raise RuntimeError(f"the restores differ: {counts}")

        print(f"load: pgbench -s {arguments.scale} at {arguments.rate} tps …", flush=True)
        for cluster in (archived, plain):
            init_load(cluster, arguments.scale)
        archived.wait_archived(archived.switch_wal(), timeout=600)
        sampler = RecoveryPointSampler(harness, source.environment_id, arguments.sample_every)
        phases: list[dict[str, Any]] = []
        for index, seconds in enumerate(phase_seconds(arguments.seconds, arguments.load_rounds)):
            order = (False, True) if index % 2 == 0 else (True, False)
            for archiving in order:
                cluster = archived if archiving else plain
                before = archived_wal(service, archive_container, archived.server)
                started = time.perf_counter()
                if archiving:
                    with sampler.running(continued=bool(phases) and phases[-1]["archiving"]):
                        figures = run_load(cluster, rate=arguments.rate, seconds=seconds, clients=arguments.clients)
                else:
                    figures = run_load(cluster, rate=arguments.rate, seconds=seconds, clients=arguments.clients)
                elapsed = time.perf_counter() - started
                after = archived_wal(service, archive_container, archived.server)
                phase = {"archiving": archiving, "seconds": round(elapsed, 1), **figures}
                if archiving:
                    phase |= {"segmentsArchived": after[0] - before[0], "bytesArchived": after[1] - before[1]}
                phases.append(phase)
                print(f"load phase: {phase}", flush=True)
    on = [phase for phase in phases if phase["archiving"]]
    off = [phase for phase in phases if not phase["archiving"]]
    minutes = sum(phase["seconds"] for phase in on) / 60
    tps_on = sum(phase["transactions"] for phase in on) / sum(phase["seconds"] for phase in on)
    tps_off = sum(phase["transactions"] for phase in off) / sum(phase["seconds"] for phase in off)
    segments_per_minute = sum(phase["segmentsArchived"] for phase in on) / minutes
    bytes_per_minute = sum(phase["bytesArchived"] for phase in on) / minutes
    samples = sampler.steady
    by_hand, ours = statistics.median(by_hand_runs), statistics.median(our_runs)
    results: dict[str, Any] = {
        "benchmark": "pitr",
        "machine": machine(),
        "loadAverage": load.figures(),
        "rounds": arguments.rounds,
        "target": TARGETS,
        "rows": arguments.rows,
        "files": arguments.files,
        "filesBytes": source.files_bytes,
        "archiveTimeoutSeconds": arguments.archive_timeout,
        "restore": {
            "byHandSeconds": round(by_hand, 2),
            "restoreToTimeSeconds": round(ours, 2),
            "ratio": round(ours / by_hand, 3),
            "restored": counts[0],
            "runs": {"byHand": [round(v, 2) for v in by_hand_runs], "restoreToTime": [round(v, 2) for v in our_runs]},
        },
        "archiving": {
            "rate": arguments.rate,
            "clients": arguments.clients,
            "scale": arguments.scale,
            "seconds": arguments.seconds,
            "loadRounds": arguments.load_rounds,
            "tpsWithout": round(tps_off, 2),
            "tpsWith": round(tps_on, 2),
            "tpsRatio": round(tps_on / tps_off, 3),
            "latencyMsWithout": round(statistics.median(phase["latencyMs"] for phase in off), 3),
            "latencyMsWith": round(statistics.median(phase["latencyMs"] for phase in on), 3),
            "walBytesPerMinute": round(sum(phase["walBytes"] for phase in on) / minutes),
            "segmentsArchivedPerMinute": round(segments_per_minute, 2),
            "bytesArchivedPerMinute": round(bytes_per_minute),
            "segmentsArchivedPerDay": round(segments_per_minute * 1440),
            "bytesArchivedPerDay": round(bytes_per_minute * 1440),
            "phases": phases,
        },
        "recoveryPoint": {
            "everySeconds": arguments.sample_every,
            "loadedSeconds": round(minutes * 60, 1),
            "samples": len(samples),
            "p50Seconds": round(percentile(samples, 0.5), 1) if samples else None,
            "p99Seconds": round(percentile(samples, 0.99), 1) if samples else None,
            "maxSeconds": round(max(samples), 1) if samples else None,
            "warmUpSamples": len(sampler.samples) - len(samples),
            "warmUpMaxSeconds": max((seconds for _, seconds, steady in sampler.samples if not steady), default=None),
            "readErrors": sampler.errors[:5],
            "sampled": [list(sample) for sample in sampler.samples],
        },
    }
    path = write_results("pitr", results, arguments.results)
    archiving = results["archiving"]
    print(
        f"restore to time: by hand {by_hand:.2f}s, ours {ours:.2f}s, ratio {results['restore']['ratio']}; "
        f"tps {archiving['tpsWith']} with / {archiving['tpsWithout']} without (ratio {archiving['tpsRatio']}); "
        f"{archiving['bytesArchivedPerDay'] / 1e9:.2f} GB archived per day; recovery point p50 "
        f"{results['recoveryPoint']['p50Seconds']}s p99 {results['recoveryPoint']['p99Seconds']}s "
        f"({len(samples)} samples)\nwritten to {path}"
    )
    return results


if __name__ == "__main__":
    main()
