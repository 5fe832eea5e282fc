"""Driving restores synchronously in integration tests: in-memory work queues, drained by hand."""

from __future__ import annotations

import subprocess

from shared.adapters.queues import MemoryWorkQueue
from shared.bootstrap import Services, build_services
from shared.clock import Clock, utc_now
from shared.config import STORAGE_CONNECTION, Settings


class Harness:
    def __init__(self, connection_string: str, *, clock: Clock = utc_now, **settings: str) -> None:
        self.queues: dict[str, MemoryWorkQueue] = {}
        environ = {STORAGE_CONNECTION: connection_string, "APPBACKUPS_COPY_CONCURRENCY": "4", **settings}
        self.services: Services = build_services(
            Settings.from_environ(environ),
            queues=lambda name: self.queues.setdefault(name, MemoryWorkQueue()),
            clock=clock,
        )

    @property
    def operation_queue(self) -> MemoryWorkQueue:
        return self.queues["operation-work"]

    def drain(self, limit: int = 100) -> None:
        """Deliver queued operation messages until none is left (delays are not waited for)."""
        for _ in range(limit):
            if not self.operation_queue.messages:
                return
            message = self.operation_queue.messages.pop(0)
            self.services.operations.advance(message["operationId"], message["step"])
        raise AssertionError("the operation did not settle")

    def backup(self, environment_id: str, actor) -> str:  # type: ignore[no-untyped-def]
        snapshot = self.services.backups.record(environment_id, actor)
        self.services.backup_runner.run(environment_id, snapshot.id)
        return snapshot.id


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
