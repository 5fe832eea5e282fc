"""A night of a fleet: E environments in a few namespaces, small databases on S database servers, the nightly
fired on one development host and then on two (each on storage of its own). Measured: the night's wall time
against the sum of the environments' single backup times over the parallelism, that every environment has
exactly one Finished backup, the most backups at once per database server, and the workers' memory.
Method: bench/README.md; figures: docs/benchmarks/index.md.

    .venv/bin/python -m bench.fleet [--environments 200] [--servers 3] [--results PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import requests
from psycopg import sql

from bench.common import (
    ADMIN_DSN,
    LoadWatch,
    cpu_seconds,
    machine,
    peak_rss_mib,
    peak_rss_reset,
    rss_mib,
    write_results,
)
from devhost.hostconfig import load_host_config
from shared.bootstrap import Services, build_services
from shared.config import STORAGE_CONNECTION, Settings, Tables
from tests.support.apphost import REPO_ROOT, AppHost, start_app_host
from tools import azurite
from tools.archiving_cluster import POSTGRES_BIN, as_postgres, chown_to_postgres, clusters_folder, processes_in
from tools.azurite import free_port
from tools.provision import provision
from tools.seed_demo import SCHEMA

TARGET_RATIO = 1.2
PER_SERVER_SETTING = "APPBACKUPS_BACKUPS_PER_DATABASE_SERVER"
NIGHTLY_TIMER = "nightly_backups"
PG_SAMPLE_SECONDS = 0.2  # how often each server's pg_dump sessions are counted
SLOT_SAMPLE_SECONDS = 0.5  # how often the slot rows are read


def say(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


def per_host_concurrency() -> dict[str, int]:
    """How many queue messages of one function a host works on at once: the Functions host (and the
    development host) fetches ``batchSize`` and fetches again when no more than ``newBatchThreshold`` run."""
    queues = load_host_config(REPO_ROOT).queues
    return {
        "batchSize": queues.batch_size,
        "newBatchThreshold": queues.new_batch_threshold,
        "concurrency": queues.batch_size + queues.new_batch_threshold,
    }


# -- database servers -----------------------------------------------------------------------------------------


@dataclass
class Server:
    """A PostgreSQL server as a backup slot names it (host:port): the machine's shared one, or a private
    cluster of this run (initdb'd as postgres, listening on 127.0.0.1 on a free port, trust auth)."""

    host: str
    port: int
    kind: str  # "shared" or "private"
    directory: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    def dsn(self, dbname: str = "postgres") -> str:
        return psycopg.conninfo.make_conninfo(ADMIN_DSN, host=self.host, port=self.port, dbname=dbname)


def start_private_server(directory: Path) -> Server:
    port = free_port()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    chown_to_postgres(directory)
    data = directory / "data"
    initdb = [str(POSTGRES_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N"]
    subprocess_run(as_postgres(initdb), directory)
    settings = {
        "port": str(port),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{directory}'",
        "fsync": "off",
        "max_connections": "100",
    }
    with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
    log = directory / "server.log"
    log.touch()
    chown_to_postgres(log)
    subprocess_run(as_postgres([str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "start"]), data)
    return Server("127.0.0.1", port, "private", directory)


def stop_private_server(server: Server) -> None:
    assert server.directory is not None
    data = server.directory / "data"
    with contextlib.suppress(Exception):
        subprocess_run(as_postgres([str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]), data)
    deadline = time.monotonic() + 10
    while (left := processes_in(server.directory)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    shutil.rmtree(server.directory, ignore_errors=True)


def subprocess_run(command: list[str], cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def database_servers(count: int, run_id: str) -> Iterator[list[Server]]:
    """The shared server on 127.0.0.1:5432 and ``count - 1`` private clusters, stopped and removed at the end."""
    servers = [Server("127.0.0.1", 5432, "shared")]
    folder = clusters_folder(REPO_ROOT / ".run" / "bench")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for index in range(1, count):
            servers.append(start_private_server(folder / f"fleet-{run_id}-{index}"))
        yield servers
    finally:
        for server in servers:
            if server.kind == "private":
                stop_private_server(server)


# -- the fleet --------------------------------------------------------------------------------------------------


@dataclass
class FleetEnvironment:
    id: str
    namespace: str
    server: Server
    database: str
    container: str
    files: list[str] = field(default_factory=list)  # the file documents' uuids


def make_fleet(
    servers: list[Server], *, environments: int, namespaces: int, files: tuple[int, int], rows: int, run_id: str
) -> list[FleetEnvironment]:
    """The environments, round robin over namespaces and servers, each with a database of its own holding
    ``rows`` rows and between ``files[0]`` and ``files[1]`` file documents (their content goes into each
    night's storage: see ``upload_files``)."""
    rng = random.Random(28)
    fleet = []
    for index in range(environments):
        fleet.append(
            FleetEnvironment(
                id=f"fleet-{run_id}-{index:03d}",
                namespace=f"fleet-{run_id}-ns{index % namespaces}",
                server=servers[index % len(servers)],
                database=f"appbackups_fleet_{run_id}_{index:03d}",
                container=f"fleet-{run_id}-{index:03d}",
                files=[str(uuid.uuid4()) for _ in range(rng.randint(*files))],
            )
        )
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda environment: create_database(environment, rows), fleet))
    return fleet


def create_database(environment: FleetEnvironment, rows: int) -> None:
    server = environment.server
    with psycopg.connect(server.dsn(), autocommit=True) as connection:
        name = sql.Identifier(environment.database)
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(name))
    with psycopg.connect(server.dsn(environment.database), autocommit=True) as connection:
        connection.execute(SCHEMA)
        connection.execute(
            "INSERT INTO \"sales$customer\" (id, name, email) SELECT n, 'customer ' || n, 'c' || n || '@example.com' "
            "FROM generate_series(1, %s) n",
            (rows,),
        )
        with connection.cursor() as cursor:
            cursor.executemany(
                'INSERT INTO "system$filedocument" (id, "__uuid__", name, size, hascontents) '
                "VALUES (%s, %s, %s, %s, true)",
                [(number, file_uuid, f"file-{number}", -1) for number, file_uuid in enumerate(environment.files, 1)],
            )


def drop_databases(fleet: list[FleetEnvironment]) -> None:
    for environment in fleet:
        with contextlib.suppress(psycopg.Error), psycopg.connect(environment.server.dsn(), autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(environment.database)))


def upload_files(services: Services, fleet: list[FleetEnvironment]) -> int:
    """Every environment's file documents (1-4 KB each) into its container of this storage; the bytes."""
    blob_service = services.clients.blob_service
    rng = random.Random(7)
    content = os.urandom(8192)

    def upload(item: tuple[str, str, int]) -> int:
        container, file_uuid, size = item
        body = content[:size] + file_uuid.encode()
        blob_service.get_blob_client(container, f"docs/{file_uuid}").upload_blob(body)
        return len(body)

    items = []
    for environment in fleet:
        blob_service.create_container(environment.container)
        items += [(environment.container, file_uuid, rng.randint(1024, 4000)) for file_uuid in environment.files]
    with ThreadPoolExecutor(16) as pool:
        return sum(pool.map(upload, items))


def register(api: str, environment: FleetEnvironment, *, namespace: str | None = None, as_id: str | None = None) -> str:
    environment_id = as_id or environment.id
    body = {
        "namespace": namespace or environment.namespace,
        "appName": "fleet",
        "displayName": environment_id,
        "state": "Running",
        "database": {
            "host": environment.server.host,
            "port": environment.server.port,
            "database": environment.database,
            "user": "postgres",
        },
        "files": {"container": environment.container, "prefix": "docs/"},
        "modelVersion": "1.0.0",
    }
    response = requests.put(f"{api}/environments/{environment_id}", json=body, timeout=60)
    response.raise_for_status()
    return environment_id


# -- watching a night -------------------------------------------------------------------------------------------


class DumpWatch:
    """The most of the fleet's databases being read by a backup at once per server, as the server sees it
    (pg_stat_activity every 0.2 s: databases with a session of the app, whose backups connect as
    ``appbackups`` — its snapshot-holding session and ``pg_dump`` alike — and only in their dump step, the one
    that holds a slot), whatever the app believes about its slots. Each environment has a database of its
    own. A dump shorter than the interval can slip between two looks: the figure is a lower bound."""

    def __init__(self, servers: list[Server], fleet: list[FleetEnvironment]) -> None:
        self._databases = {server.name: [e.database for e in fleet if e.server is server] for server in servers}
        self._servers = servers
        self.most = {server.name: 0 for server in servers}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        connections = {server.name: psycopg.connect(server.dsn(), autocommit=True) for server in self._servers}
        try:
            while not self._stop.wait(PG_SAMPLE_SECONDS):
                for name, connection in connections.items():
                    row = connection.execute(
                        "SELECT count(DISTINCT datname) FROM pg_stat_activity WHERE application_name = 'appbackups' "
                        "AND datname = ANY(%s)",
                        (self._databases[name],),
                    ).fetchone()
                    self.most[name] = max(self.most[name], int(row[0]) if row else 0)
                self.samples += 1
        finally:
            for connection in connections.values():
                connection.close()

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.most


class SlotWatch:
    """The most slots held at once per server, as the app's slot rows say (read every 0.5 s)."""

    def __init__(self, services: Services, servers: list[Server]) -> None:
        slots = services.backup_steps.slots
        assert slots is not None, "the backup steps have no slots"
        self._slots = slots
        self._servers = servers
        self.most = {server.name: 0 for server in servers}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(SLOT_SAMPLE_SECONDS):
            for server in self._servers:
                with contextlib.suppress(Exception):  # a read that fails under load is a look missed, not a figure
                    self.most[server.name] = max(self.most[server.name], len(self._slots.holders(server.name)))

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.most


def fire_nightly(host: AppHost) -> None:
    """The nightly timer run by hand through the host's admin API (as Core Tools' is): no spread."""
    root = host.api.removesuffix("/api")
    response = requests.post(f"{root}/admin/functions/{NIGHTLY_TIMER}", json={"input": ""}, timeout=30)
    response.raise_for_status()


def settled_backups(services: Services) -> dict[str, int]:
    """The backups table's Finished and Failed rows, in one filtered scan: cheap beside the nights view."""
    table = services.clients.table_service.get_table_client(Tables.BACKUPS)
    counted = {"Finished": 0, "Failed": 0}
    for row in table.query_entities("Status eq 'Finished' or Status eq 'Failed'", select=["Status"]):
        counted[row["Status"]] += 1
    return counted


def watch_night(
    services: Services, api: str, night: date, expected: int, *, interval: float, view_every: float, timeout: float
) -> dict[str, Any]:
    """Until every environment's backup is Finished or Failed (the backups table, every ``interval`` s); the
    nights view read every ``view_every`` s alongside, its counts and how long it took to answer kept (a look
    that takes longer than a minute is recorded as such, and the watch goes on)."""
    started = time.perf_counter()
    timeline: list[dict[str, Any]] = []
    call_seconds: list[float] = []
    timed_out = 0
    viewed = -view_every
    while True:
        now = time.perf_counter() - started
        if now - viewed >= view_every:
            viewed = now
            try:
                response = requests.get(f"{api}/schedules/nights/{night.isoformat()}", timeout=60)
                response.raise_for_status()
                call_seconds.append(time.perf_counter() - started - now)
                timeline.append({"seconds": round(now, 1), **response.json()["counts"]})
            except requests.Timeout:
                timed_out += 1
        counted = settled_backups(services)
        if counted["Finished"] + counted["Failed"] >= expected:
            with contextlib.suppress(requests.RequestException):  # the view at the end: all done, it should say
                response = requests.get(f"{api}/schedules/nights/{night.isoformat()}", timeout=300)
                timeline.append({"seconds": round(time.perf_counter() - started, 1), **response.json()["counts"]})
            return {
                "settledSeconds": time.perf_counter() - started,
                "timeline": timeline,
                "viewCallSeconds": {
                    "median": statistics.median(call_seconds) if call_seconds else None,
                    "max": max(call_seconds) if call_seconds else None,
                    "looks": len(call_seconds),
                    "timedOutAfter60s": timed_out,
                },
            }
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"the night did not settle in {timeout} s: {counted}")
        time.sleep(interval)


def thin(timeline: list[dict[str, Any]], keep: int = 40) -> list[dict[str, Any]]:
    """At most ``keep`` points of a timeline, its first and last included."""
    if len(timeline) <= keep:
        return timeline
    step = (len(timeline) - 1) / (keep - 1)
    return [timeline[round(index * step)] for index in range(keep)]


# -- one night ----------------------------------------------------------------------------------------------------


@dataclass
class NightRun:
    figures: dict[str, Any]
    services: Services
    hosts: list[AppHost]


@contextlib.contextmanager
def night_storage(work_dir: Path, *, in_memory: bool) -> Iterator[tuple[str, int | None]]:
    """A fresh Azurite of this night's own (a second night on the same storage would find every backup made)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    storage = azurite.start(work_dir / "azurite", log_file=work_dir / "azurite.log", in_memory=in_memory)
    try:
        yield storage.connection_string, storage.process.pid if storage.process else None
    finally:
        storage.stop()


@contextlib.contextmanager
def night_of(
    fleet: list[FleetEnvironment],
    servers: list[Server],
    *,
    hosts: int,
    per_server: int,
    work_dir: Path,
    in_memory: bool,
    poll_interval: float,
    view_every: float,
    timeout: float,
    rest_seconds: float,
) -> Iterator[NightRun]:
    """The nightly fired on ``hosts`` development hosts sharing fresh storage, measured until settled; the hosts
    and storage stay up inside the block (the single backups are measured on them afterwards)."""
    with night_storage(work_dir, in_memory=in_memory) as (storage, storage_pid):
        services = build_services(
            Settings.from_environ({STORAGE_CONNECTION: storage, PER_SERVER_SETTING: str(per_server)})
        )
        provision(services.clients)
        uploaded = upload_files(services, fleet)
        say(f"{sum(len(e.files) for e in fleet)} file documents uploaded")
        settings = {PER_SERVER_SETTING: str(per_server)}
        started: list[AppHost] = []
        try:
            for number in range(hosts):
                started.append(start_app_host(storage, work_dir / f"devhost-{number}.log", extra_settings=settings))
            for environment in fleet:
                register(started[0].api, environment)
            say(f"{hosts} host(s) up, {len(fleet)} environments registered")
            time.sleep(min(2.0, rest_seconds))  # the hosts' first polls settle before the clock starts
            pids = [host.process.pid for host in started]
            for pid in pids:
                peak_rss_reset(pid)
            rss_before = [rss_mib(pid) for pid in pids]
            cpu_before = [cpu_seconds(pid) for pid in pids]
            storage_cpu = cpu_seconds(storage_pid) if storage_pid else None
            load = LoadWatch()
            dumps, slots = DumpWatch(servers, fleet), SlotWatch(services, servers)
            fired = datetime.now(UTC)
            clock = time.perf_counter()
            fire_nightly(started[0])
            night = fired.date()
            try:
                seen = watch_night(
                    services,
                    started[0].api,
                    night,
                    len(fleet),
                    interval=poll_interval,
                    view_every=view_every,
                    timeout=timeout,
                )
            finally:
                most_dumps, most_slots = dumps.stop(), slots.stop()
            settled = time.perf_counter() - clock
            cpu_after = [cpu_seconds(pid) for pid in pids]
            storage_cores = (
                round((cpu_seconds(storage_pid) - storage_cpu) / settled, 2) if storage_pid and storage_cpu else None
            )
            say(f"night settled: {settled:.1f} s")
            time.sleep(rest_seconds)  # at rest: nothing runs
            resting = [rss_mib(pid) for pid in pids]
            peaks = [peak_rss_mib(pid) for pid in pids]  # the high-water mark since the night began, rest included
            figures = {
                "hosts": hosts,
                "night": night.isoformat(),
                "filesBytes": uploaded,
                **exactly_once(services, fleet),
                "wallSeconds": round(wall_seconds(services, fleet, fired), 2),
                "seenSettledSeconds": round(seen["settledSeconds"], 1),
                "viewCallSeconds": {k: v if v is None else round(v, 2) for k, v in seen["viewCallSeconds"].items()},
                "mostRunningSeenInView": max((point["running"] for point in seen["timeline"]), default=None),
                "perServer": {
                    server.name: {
                        "kind": server.kind,
                        "environments": sum(1 for e in fleet if e.server is server),
                        "mostBackupsSeenAtOnce": most_dumps[server.name],
                        "mostSlotsHeldAtOnce": most_slots[server.name],
                    }
                    for server in servers
                },
                "pgSamples": dumps.samples,
                # Each time a worker took up a backup's operation: once or twice per backup when nothing waits, and
                # once more each time a backup looked for a slot and found none.
                "operationWakes": sum(host.log().count("Executed 'Functions.operation_worker'") for host in started),
                "workers": [
                    {
                        "rssBeforeMiB": round(before, 1),
                        "peakRssMiB": round(peak, 1),
                        "restingRssMiB": round(rest, 1),
                        "cores": round((after - cpu) / settled, 2),
                    }
                    for before, peak, rest, cpu, after in zip(
                        rss_before, peaks, resting, cpu_before, cpu_after, strict=True
                    )
                ],
                "storageCores": storage_cores,
                "loadAverage": load.figures(),
                "timeline": thin(seen["timeline"]),
            }
            yield NightRun(figures, services, started)
        finally:
            for host in started:
                host.stop()


def exactly_once(services: Services, fleet: list[FleetEnvironment]) -> dict[str, Any]:
    """Per environment, its backups on this storage (the night's are the only ones made): exactly one, Finished."""
    counts = {"finishedExactlyOnce": 0, "failed": 0, "missing": 0, "duplicates": 0}
    problems = []
    for environment in fleet:
        backups = list(services.backup_catalog.of_environment(environment.id))
        finished = [backup for backup in backups if backup.status.value == "Finished"]
        if len(backups) == 1 and len(finished) == 1:
            counts["finishedExactlyOnce"] += 1
            continue
        if not backups:
            counts["missing"] += 1
        elif len(backups) > 1:
            counts["duplicates"] += 1
        else:
            counts["failed"] += 1
        problems.append(
            {"environment": environment.id, "backups": [[b.status.value, b.status_message or ""] for b in backups]}
        )
    return {**counts, "problems": problems[:10]}


def wall_seconds(services: Services, fleet: list[FleetEnvironment], fired: datetime) -> float:
    """From the timer's firing to the last of the night's backups finishing (the backups' own finishedOn)."""
    ends = [
        backup.finished_on
        for environment in fleet
        for backup in services.backup_catalog.of_environment(environment.id)
        if backup.finished_on is not None
    ]
    return (max(ends) - fired).total_seconds() if ends else float("nan")


# -- single backups ---------------------------------------------------------------------------------------------


def single_times(api: str, fleet: list[FleetEnvironment], sample: int, run_id: str) -> dict[str, Any]:
    """Backups through the API one at a time, of ``sample`` environments chosen evenly by file count, each
    registered afresh in a namespace of its own (so that its backup copies every file, as the night's did);
    their sum over the whole fleet estimated along the line through (files, seconds)."""
    ordered = sorted(fleet, key=lambda environment: len(environment.files))
    step = (len(ordered) - 1) / max(sample - 1, 1)
    chosen = [ordered[round(index * step)] for index in range(min(sample, len(ordered)))]
    runs = []
    for number, environment in enumerate(chosen):
        clone = register(api, environment, namespace=f"fleet-{run_id}-single{number}", as_id=f"{environment.id}-single")
        seconds = backup_seconds(api, clone)
        runs.append({"files": len(environment.files), "seconds": round(seconds, 3)})
    counts = [run["files"] for run in runs]
    times = [run["seconds"] for run in runs]
    if len(set(counts)) >= 2:
        per_file, intercept = statistics.linear_regression(counts, times)
    else:
        per_file, intercept = 0.0, statistics.mean(times)
    estimated = sum(intercept + per_file * len(environment.files) for environment in fleet)
    return {
        "sample": len(runs),
        "runs": runs,
        "meanSeconds": round(statistics.mean(times), 3),
        "fit": {"intercept": round(intercept, 4), "perFile": round(per_file, 6)},
        "estimatedSumSeconds": round(estimated, 1),
    }


def backup_seconds(api: str, environment_id: str, timeout: float = 600) -> float:
    started = time.perf_counter()
    created = requests.post(f"{api}/environments/{environment_id}/backups", json={"comment": "single"}, timeout=60)
    created.raise_for_status()
    location = api.removesuffix("/api") + created.headers["Location"]
    while True:
        details = requests.get(location, timeout=60).json()
        if details["status"] != "Processing":
            if details["status"] != "Finished":
                raise RuntimeError(f"the single backup of {environment_id} failed: {details['statusMessage']}")
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"the single backup of {environment_id} did not finish in {timeout} s")
        time.sleep(0.05)


# -- the run ----------------------------------------------------------------------------------------------------


def run(
    *,
    environments: int = 200,
    namespaces: int = 4,
    servers: int = 3,
    files: tuple[int, int] = (50, 500),
    rows: int = 300,
    per_server: int = 4,
    sample: int = 12,
    hosts: tuple[int, ...] = (1, 2),
    work_dir: Path,
    results: Path | None = None,
    in_memory: bool = False,
    poll_interval: float = 2.0,
    view_every: float = 30.0,
    timeout: float = 3600,
    rest_seconds: float = 5.0,
) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:6]
    concurrency = per_host_concurrency()
    load = LoadWatch()
    nights = []
    single: dict[str, Any] = {}
    with database_servers(servers, run_id) as started_servers:
        fleet = make_fleet(
            started_servers, environments=environments, namespaces=namespaces, files=files, rows=rows, run_id=run_id
        )
        say(f"{len(fleet)} databases on {servers} server(s)")
        try:
            for count in hosts:
                with night_of(
                    fleet,
                    started_servers,
                    hosts=count,
                    per_server=per_server,
                    work_dir=work_dir / f"night-{count}-hosts",
                    in_memory=in_memory,
                    poll_interval=poll_interval,
                    view_every=view_every,
                    timeout=timeout,
                    rest_seconds=rest_seconds,
                ) as night:
                    if count == hosts[0]:  # after its night, on the same host: one backup at a time
                        single = single_times(night.hosts[0].api, fleet, sample, run_id)
                        say(f"single backups timed: {single['runs']}")
                    nights.append(night.figures)
        finally:
            drop_databases(fleet)
    for figures in nights:
        parallelism = min(figures["hosts"] * concurrency["concurrency"], servers * per_server)
        ideal = single["estimatedSumSeconds"] / parallelism
        figures["parallelism"] = parallelism
        figures["idealSeconds"] = round(ideal, 2)
        figures["ratio"] = round(figures["wallSeconds"] / figures["idealSeconds"], 2)
        figures["targetMet"] = figures["ratio"] <= TARGET_RATIO
    outcome = {
        "benchmark": "fleet",
        "machine": machine(),
        "loadAverage": load.figures(),
        "target": {"ratio": f"<= {TARGET_RATIO}", "perServer": f"<= {per_server}", "exactlyOnce": environments},
        "setup": {
            "environments": environments,
            "namespaces": namespaces,
            "servers": [
                {"name": server.name, "kind": server.kind, "environments": environments // servers}
                for server in started_servers
            ],
            "filesPerEnvironment": list(files),
            "files": sum(len(environment.files) for environment in fleet),
            "fileSizes": "1-4 KB",
            "rowsPerDatabase": rows,
            "backupsPerDatabaseServer": per_server,
            "hostQueues": concurrency,
            "slotWaitSeconds": "3 + 0-3 (per operation)",
            "storage": "a fresh Azurite per night" + (" (in memory)" if in_memory else ""),
        },
        "single": single,
        "nights": nights,
    }
    write_results("fleet", outcome, results)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--environments", type=int, default=200)
    parser.add_argument("--namespaces", type=int, default=4)
    parser.add_argument("--servers", type=int, default=3, help="database servers: the shared one and private ones")
    parser.add_argument("--min-files", type=int, default=50)
    parser.add_argument("--max-files", type=int, default=500)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--per-server", type=int, default=4, help=f"{PER_SERVER_SETTING} of the hosts")
    parser.add_argument("--sample", type=int, default=12, help="environments whose single backup is timed")
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2], help="the nights to run, by host count")
    parser.add_argument("--in-memory", action="store_true", help="Azurite keeps its data in memory")
    parser.add_argument("--results", type=Path, default=None, help="default: bench/results/fleet.json")
    parser.add_argument("--work-dir", type=Path, default=None)
    arguments = parser.parse_args()
    work_dir = arguments.work_dir or Path(tempfile.mkdtemp(prefix="appbackups-fleet-"))
    outcome = run(
        environments=arguments.environments,
        namespaces=arguments.namespaces,
        servers=arguments.servers,
        files=(arguments.min_files, arguments.max_files),
        rows=arguments.rows,
        per_server=arguments.per_server,
        sample=arguments.sample,
        hosts=tuple(arguments.hosts),
        work_dir=work_dir,
        results=arguments.results,
        in_memory=arguments.in_memory,
    )
    total = outcome["setup"]["environments"]
    for figures in outcome["nights"]:
        print(
            f"{figures['hosts']} host(s): wall {figures['wallSeconds']} s, ideal {figures['idealSeconds']} s, "
            f"ratio {figures['ratio']}, exactly once {figures['finishedExactlyOnce']}/{total}"
        )


if __name__ == "__main__":
    main()
