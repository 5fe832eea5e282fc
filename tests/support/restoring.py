"""Driving long jobs synchronously in integration tests: in-memory work queues, drained by hand."""

from __future__ import annotations

import subprocess
import time

from shared.adapters.metering import StorageMeter
from shared.adapters.pointintime import PointInTimeSource
from shared.adapters.queues import MemoryWorkQueue
from shared.adapters.tables import AzureRowTable
from shared.bootstrap import Services, build_services
from shared.catalog.operations import OperationCatalog
from shared.clients import StorageClients, TransportWrapper
from shared.clock import Clock, utc_now
from shared.config import STORAGE_CONNECTION, Settings, Tables
from shared.telemetry import Telemetry


class Harness:
    def __init__(
        self,
        connection_string: str,
        *,
        clock: Clock = utc_now,
        meter: StorageMeter | None = None,
        wrap_transport: TransportWrapper | None = None,
        point_in_time: PointInTimeSource | None = None,
        telemetry: Telemetry | None = None,
        **settings: str,
    ) -> None:
        self.queues: dict[str, MemoryWorkQueue] = {}
        environ = {
            STORAGE_CONNECTION: connection_string,
            "APPBACKUPS_COPY_CONCURRENCY": "4",
            "APPBACKUPS_OPERATION_RETRY_SECONDS": "1",
            **settings,
        }
        parsed = Settings.from_environ(environ)
        self.services: Services = build_services(
            parsed,
            clients=StorageClients(parsed.storage, meter=meter, wrap_transport=wrap_transport),
            queues=lambda name: self.queues.setdefault(name, MemoryWorkQueue()),
            clock=clock,
            point_in_time=point_in_time,
            telemetry=telemetry,
        )
        self.services.harness = self  # type: ignore[attr-defined]  # tests that hold only the services drain too

    @property
    def operation_queue(self) -> MemoryWorkQueue:
        return self.queues["operation-work"]

    def deliver(self) -> bool:
        """Deliver the next queued operation message, waiting out its delay (a retry's back-off).
        Watchdog messages are left aside: they matter only when a worker dies, and the fault tests
        kill real processes for that. False when nothing is queued."""
        queue = self.queues.setdefault("operation-work", MemoryWorkQueue())
        while (message := queue.pop_next_visible()) is not None:
            if "watch" in message.body:
                continue
            operation = self.services.operations.find(message.body["operationId"])
            if operation is None or not operation.open:
                continue  # it would be dropped on delivery: no need to wait for it
            wait = message.visible_at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.services.operations.handle(message.body["operationId"])
            return True
        return False

    def drain(self, limit: int = 200) -> None:
        """Deliver queued operation messages until none is left."""
        for _ in range(limit):
            if not self.deliver():
                return
        raise AssertionError("the operations did not settle")

    def backup(self, environment_id: str, actor, **kwargs) -> str:  # type: ignore[no-untyped-def]
        backup = self.services.backups.request(environment_id, actor, **kwargs)
        self.drain()
        return backup.id


def schema_text(dsn_database: str) -> str:
    """The database's schema as pg_dump prints it (without the per-run restrict key)."""
    output = subprocess.run(
        [
            "pg_dump",
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            dsn_database,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return "\n".join(line for line in output.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def operation_catalog(services: Services) -> OperationCatalog:
    """The operations table, read and written as the engine does: for a test that plays a worker's part."""
    return OperationCatalog(AzureRowTable(services.clients.table_service.get_table_client(Tables.OPERATIONS)))
