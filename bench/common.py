"""What the benchmarks share: private services, a generated app dataset, timing and memory."""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import requests
from psycopg import sql

from shared.archives.fullsnapshot import tree_path
from shared.bootstrap import Services, build_services
from shared.config import STORAGE_CONNECTION, Settings
from tests.support.apphost import AppHost, start_app_host
from tools import azurite
from tools.provision import provision
from tools.seed_demo import SCHEMA

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
RESULTS = Path(__file__).resolve().parent / "results"
STORAGE_HELP = "the connection string of a running Azurite to use instead of one of the run's own (a smoke run's)"


@dataclass
class Bench:
    storage: str  # the connection string
    services: Services
    host: AppHost
    work_dir: Path

    @property
    def api(self) -> str:
        return self.host.api


@contextmanager
def azurite_storage(work_dir: Path, connection_string: str | None = None, *, in_memory: bool = False) -> Iterator[str]:
    """The connection string of an Azurite of the run's own under ``work_dir``, stopped at the end; or of the
    running one ``connection_string`` names (a smoke run's: the test session's), left running."""
    if connection_string is not None:
        yield connection_string
        return
    work_dir.mkdir(parents=True, exist_ok=True)
    storage = azurite.start(work_dir / "azurite", log_file=work_dir / "azurite.log", in_memory=in_memory)
    try:
        yield storage.connection_string
    finally:
        storage.stop()


@contextmanager
def bench_services(work_dir: Path, connection_string: str | None = None) -> Iterator[Bench]:
    work_dir.mkdir(parents=True, exist_ok=True)
    with azurite_storage(work_dir, connection_string) as storage:
        services = build_services(Settings.from_environ({STORAGE_CONNECTION: storage}))
        provision(services.clients)
        host = start_app_host(storage, work_dir / "devhost.log")
        try:
            yield Bench(storage, services, host, work_dir)
        finally:
            host.stop()


@dataclass
class Dataset:
    database: str
    dsn: str
    container: str
    prefix: str
    files: dict[str, int]  # uuid -> size
    next_id: int


def create_database(name: str) -> str:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=name)


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def file_sizes(count: int, seed: int) -> list[int]:
    """Mixed sizes, log-uniform from 2 KB to 4 MB, as file documents tend to be."""
    rng = random.Random(seed)
    return [int(2048 * (2048 ** rng.random())) for _ in range(count)]


def create_order_lines(connection: psycopg.Connection, rows: int) -> None:
    """The benchmarks' table of ``rows`` Mendix-like order lines, in the database ``connection`` is on."""
    connection.execute(
        'CREATE TABLE "sales$orderline" (id bigint PRIMARY KEY, "order" bigint, product varchar(100), '
        "quantity integer, price numeric(12,2), note text, changeddate timestamp)"
    )
    connection.execute(
        "INSERT INTO \"sales$orderline\" SELECT n, n / 10, 'product ' || (n %% 5000), (n %% 17) + 1, "
        "((n * 7919) %% 100000) / 100.0, md5(n::text) || ' ' || repeat('lorem ipsum ', (n %% 8)::int + 1), "
        "now() - (n || ' seconds')::interval FROM generate_series(1::bigint, %s) n",
        (rows,),
    )


def between_markers(page: Path, begin: str, end: str) -> str:
    """What ``page`` holds between its ``begin`` and ``end`` markers."""
    _, rest = page.read_text(encoding="utf-8").split(begin, 1)
    return rest.split(end, 1)[0].strip("\n") + "\n"


def write_between_markers(page: Path, begin: str, end: str, body: str) -> None:
    """Replace what ``page`` holds between its ``begin`` and ``end`` markers with ``body``."""
    text = page.read_text(encoding="utf-8")
    before, rest = text.split(begin, 1)
    _, after = rest.split(end, 1)
    page.write_text(before + begin + "\n\n" + body + "\n" + end + after, encoding="utf-8")


def generate_dataset(services: Services, *, rows: int, files: int, seed: int = 7) -> Dataset:
    """A Mendix-like database of ``rows`` order lines, and ``files`` file documents in Azurite."""
    name = f"appbackups_bench_{uuid.uuid4().hex[:8]}"
    dsn = create_database(name)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(SCHEMA)
        create_order_lines(connection, rows)
    container = f"bench-files-{uuid.uuid4().hex[:6]}"
    dataset = Dataset(name, dsn, container, "docs/", {}, 1)
    services.clients.blob_service.create_container(container)
    add_files(services, dataset, file_sizes(files, seed))
    return dataset


def add_files(services: Services, dataset: Dataset, sizes: list[int], *, mirror: Path | None = None) -> None:
    """Upload new file documents and record them in the database; with ``mirror``, also write each
    into ``mirror`` as a Full Snapshot archive's tree/ holds it (what a ``tar czf`` baseline packs)."""
    container = services.clients.blob_service.get_container_client(dataset.container)
    chunk = os.urandom(4 * 1024 * 1024)
    new = [(str(uuid.uuid4()), size) for size in sizes]

    def upload(item: tuple[str, int]) -> None:
        file_uuid, size = item
        offset = hash(file_uuid) % (len(chunk) - size) if size < len(chunk) else 0
        content = chunk[offset : offset + size] + file_uuid.encode()
        container.upload_blob(dataset.prefix + file_uuid, content)
        if mirror is not None:
            path = mirror / tree_path(file_uuid)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(upload, new))
    with psycopg.connect(dataset.dsn, autocommit=True) as connection, connection.cursor() as cursor:
        rows = []
        for file_uuid, size in new:
            rows.append((dataset.next_id, file_uuid, f"file-{dataset.next_id}", size + len(file_uuid)))
            dataset.files[file_uuid] = size + len(file_uuid)
            dataset.next_id += 1
        cursor.executemany(
            'INSERT INTO "system$filedocument" (id, "__uuid__", name, size, hascontents) VALUES (%s, %s, %s, %s, true)',
            rows,
        )


def register(bench: Bench, environment_id: str, namespace: str, dataset: Dataset) -> None:
    body = {
        "namespace": namespace,
        "appName": "bench",
        "displayName": environment_id,
        "state": "Running",
        "database": {"host": "127.0.0.1", "database": dataset.database, "user": "postgres"},
        "files": {"container": dataset.container, "prefix": dataset.prefix},
        "modelVersion": "1.0.0",
    }
    response = requests.put(f"{bench.api}/environments/{environment_id}", json=body, timeout=60)
    response.raise_for_status()


def peak_rss_reset(pid: int) -> None:
    """Reset the kernel's peak-RSS mark of a process (VmHWM), so the next reading is this run's peak."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pid: int, *, busy_share: float = 0.15, window: float = 2.0, timeout: float = 1800) -> float:
    """Wait until the process uses less than ``busy_share`` of a core over ``window`` seconds; the seconds
    waited. Azurite collects what deleted containers held some time after the deletes are answered, on the
    one thread that also serves every request: a measurement that began meanwhile measured that as well."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - before < busy_share * window:
            break
    return time.monotonic() - started


def peak_rss_mib(pid: int) -> float:
    return _status_mib(pid, "VmHWM:")


def rss_mib(pid: int) -> float:
    return _status_mib(pid, "VmRSS:")


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def backup_through_api(bench: Bench, environment_id: str, timeout: float = 1800) -> tuple[float, dict]:
    """POST a backup and poll it until it is no longer Processing; returns the wall time and details."""
    started = time.perf_counter()
    created = requests.post(f"{bench.api}/environments/{environment_id}/backups", json={"comment": "bench"}, timeout=60)
    created.raise_for_status()
    location = bench.api.removesuffix("/api") + created.headers["Location"]
    while True:
        details = requests.get(location, timeout=60).json()
        if details["status"] != "Processing":
            elapsed = time.perf_counter() - started
            if details["status"] != "Finished":
                raise RuntimeError(f"backup failed: {details['statusMessage']}")
            return elapsed, details
        if time.perf_counter() - started > timeout:
            raise RuntimeError("backup did not finish in time")
        time.sleep(0.1)


def pg_dump_command(database: str) -> list[str]:
    return ["pg_dump", "-Fc", "-O", "-x", "-h", "127.0.0.1", "-U", "postgres", database]


def write_results(name: str, results: dict, path: Path | None = None) -> Path:
    """Write ``results`` to bench/results/<name>.json, or to ``path`` (a smoke run's, say)."""
    path = path or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def load_average() -> list[float]:
    """The machine's load averages over 1, 5 and 15 minutes, as `uptime` shows them."""
    return [round(value, 2) for value in os.getloadavg()]


class LoadWatch:
    """The machine's load while a benchmark runs: `uptime`'s figures at its start and end, and the highest
    1-minute load seen in between (sampled every few seconds). The machine is shared: a figure measured
    under other work says so here."""

    def __init__(self, interval: float = 5.0) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._start = load_average()
        self._peak = self._start[0]
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self._peak = max(self._peak, os.getloadavg()[0])

    def figures(self) -> dict[str, list[float] | float]:
        """Stops sampling; the start and end load averages (1, 5, 15 minutes) and the peak 1-minute one."""
        self._stop.set()
        self._thread.join()
        end = load_average()
        return {"start": self._start, "end": end, "peak1min": round(max(self._peak, end[0]), 2)}


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "postgres": subprocess.run(["pg_dump", "--version"], capture_output=True, text=True).stdout.strip(),
        "storage": "Azurite (local emulator)",
    }


def bench_parser(description: str | None, *, rows: int = 1_500_000, files: int = 4000) -> argparse.ArgumentParser:
    """The options every benchmark takes: the dataset's size and how often each measurement runs."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--files", type=int, default=files)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--results", type=Path, default=None, help="where to write the results (default: bench/results/<name>.json)"
    )
    parser.add_argument("--storage", default=None, help=STORAGE_HELP)
    return parser
