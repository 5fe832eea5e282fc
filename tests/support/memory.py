"""Services wired to in-memory tables, for unit tests of the core and of the HTTP handlers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from shared.adapters.queues import MemoryWorkQueue
from shared.adapters.tables import MemoryRowTable
from shared.bootstrap import Services, build_services
from shared.config import Settings, StorageConnection
from tools.azurite import connection_string


class SteppingClock:
    """A clock that advances a fixed step on every reading, so each event has its own time."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start or datetime(2026, 10, 22, 2, 0, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def memory_services(clock: SteppingClock | None = None, **settings: object) -> Services:
    tables: dict[str, MemoryRowTable] = {}
    queues: dict[str, MemoryWorkQueue] = {}

    def table(name: str) -> MemoryRowTable:
        return tables.setdefault(name, MemoryRowTable(name))

    def queue(name: str) -> MemoryWorkQueue:
        return queues.setdefault(name, MemoryWorkQueue())

    # An endpoint nothing listens on: unit tests must not reach storage through the clients.
    storage = StorageConnection(connection_string=connection_string(1, 1, 1))
    return build_services(
        Settings(storage=storage, **settings),  # type: ignore[arg-type]
        tables=table,
        queues=queue,
        clock=clock or SteppingClock(),
    )


def iter_pages(fetch, limit: int) -> Iterator[list]:  # type: ignore[no-untyped-def]
    token = None
    while True:
        items, token = fetch(limit=limit, continuation=token)
        yield items
        if token is None:
            return
