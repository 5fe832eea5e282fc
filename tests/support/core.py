"""The core on its twins, for unit tests: services on in-memory tables, queues, blobs and databases,
a clock the test moves, and the queue simulated (messages delivered when they would become visible).
No Azurite, no PostgreSQL, no sleeps: a test reads as the operator's story and runs in milliseconds."""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.blobs import MemoryBlobAccount, MemoryBlobStore
from shared.adapters.pointintime.memory import MemoryPointInTime
from shared.adapters.postgres.memory import FILE_DOCUMENTS, MemoryDatabase, MemoryDatabases, Table
from shared.adapters.queues import MemoryWorkQueue
from shared.bootstrap import Services
from shared.config import Queues
from shared.domain.access import SYSTEM
from shared.domain.environments import (
    DatabaseConnection,
    EnvironmentState,
    FileLocation,
    MissingFiles,
    PointInTime,
    Registration,
)
from shared.domain.operations import Operation
from tests.support.memory import ManualClock, QueueSimulator, memory_services

CUSTOMERS = 'public."sales$customer"'
FILE_COLUMNS = ("id", "__uuid__", "hascontents", "deleteafterdownload")


def md5_hex(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


@dataclass
class TwinApp:
    """An environment whose database and file store are twins: what a test fills and inspects."""

    world: CoreWorld
    environment_id: str
    namespace: str
    connection: DatabaseConnection
    store: MemoryBlobStore
    prefix: str = "docs/"
    files: dict[str, bytes] = field(default_factory=dict)  # referenced file documents, by uuid

    @property
    def database(self) -> MemoryDatabase:
        return self.world.databases.database(self.connection)

    def add_document(self, content: bytes | None = None, *, has_contents: bool = True, upload: bool = True) -> str:
        file_uuid = str(uuid.uuid4())
        content = os.urandom(100 + len(self.files)) if content is None else content
        table = self.database.tables[FILE_DOCUMENTS]
        table.rows.append((len(table.rows) + 1, file_uuid, has_contents, False))
        if upload:
            self.store.put(self.prefix + file_uuid, content, overwrite=True)
        if has_contents:
            self.files[file_uuid] = content
        return file_uuid

    def add_customers(self, *names: str) -> None:
        table = self.database.tables[CUSTOMERS]
        table.rows.extend((len(table.rows) + 1, name) for name in names)

    def contents(self) -> dict[str, list[tuple[Any, ...]]]:
        return self.database.contents()

    def stored_files(self) -> dict[str, str]:
        return {
            blob.name.removeprefix(self.prefix): md5_hex(self.store.read_bytes(blob.name))
            for blob in self.store.list(self.prefix)
        }

    def referenced_files(self) -> dict[str, str]:
        return {file_uuid: md5_hex(content) for file_uuid, content in self.files.items()}

    def remove_document(self, file_uuid: str) -> None:
        """The app deletes a file document: its row and its blob go."""
        table = self.database.tables[FILE_DOCUMENTS]
        table.rows[:] = [row for row in table.rows if row[1] != file_uuid]
        self.store.delete(self.prefix + file_uuid)
        self.files.pop(file_uuid, None)

    @property
    def server(self) -> str:
        """The archive's name for its database server (an app made with ``point_in_time``)."""
        return f"server-{self.connection.database}"

    def capture_files(self) -> None:
        """A run of the capture timer for this environment."""
        services = self.world.services
        services.captures.capture(services.environments.get(self.environment_id))

    def archive(self) -> None:
        """What the database holds now is in its server's archive from now on (WAL archived up to now)."""
        self.world.point_in_time.capture(self.server, self.connection, self.world.clock.now)


class CoreWorld:
    """The services on twins, the queue simulated on a clock that moves only with the work."""

    def __init__(self, **settings: object) -> None:
        self.clock = ManualClock()
        self.account = MemoryBlobAccount(clock=self.clock)
        self.databases = MemoryDatabases()
        self.point_in_time = MemoryPointInTime(self.databases)
        self.queues: dict[str, MemoryWorkQueue] = {}
        self.services: Services = memory_services(
            self.clock,
            account=self.account,
            databases=self.databases,
            queues=self.queues,
            point_in_time=self.point_in_time,
            **settings,
        )
        self.queue = self.queues.setdefault(Queues.OPERATIONS, MemoryWorkQueue())
        self.simulator = QueueSimulator(
            self.queue,
            self.clock,
            lambda body: self.services.operations.handle(body["operationId"], watch=body.get("watch")),
        )

    def app(
        self,
        *,
        namespace: str = "ns",
        state: str = "Running",
        documents: int = 3,
        customers: int = 3,
        missing_files: MissingFiles = MissingFiles.WARN,
        point_in_time: bool = False,
    ) -> TwinApp:
        """With ``point_in_time``, its server is archived (a base backup now, with the database as it is made)."""
        suffix = uuid.uuid4().hex[:8]
        connection = DatabaseConnection(host="memory", port=5432, database=f"db-{suffix}", user="app")
        self.databases.create(connection, {FILE_DOCUMENTS: Table(FILE_COLUMNS), CUSTOMERS: Table(("id", "name"))})
        container = f"files-{suffix}"
        registration = Registration(
            namespace=namespace,
            app_name="app",
            display_name=f"App {suffix}",
            state=EnvironmentState(state),
            database=connection,
            files=FileLocation(container=container, prefix="docs/"),
            model_version="1.0.0",
            deployment_package="app_1.0.0.mda",
            missing_files=missing_files,
            point_in_time=PointInTime(server=f"server-{connection.database}") if point_in_time else None,
        )
        environment_id = f"app-{suffix}"
        self.services.environments.put(environment_id, registration, SYSTEM)
        app = TwinApp(self, environment_id, namespace, connection, self.account.store(container))
        for _ in range(documents):
            app.add_document()
        app.add_customers(*(f"customer {n}" for n in range(customers)))
        if point_in_time:
            self.point_in_time.base_backup(app.server, self.clock.now)
            app.archive()
        return app

    def run(self, until=None, limit: int = 500) -> int:  # type: ignore[no-untyped-def]
        """Deliver messages until none is left (watchdogs included: the clock jumps to them)."""
        return self.simulator.run(until=until, limit=limit)

    def settle(self, operation_id: str, limit: int = 500) -> Operation:
        """Deliver messages until the operation has nothing left to do."""
        self.run(until=lambda: not self.services.operations.get(operation_id).open, limit=limit)
        return self.services.operations.get(operation_id)
