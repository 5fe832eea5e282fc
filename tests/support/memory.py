"""Services wired to in-memory tables, queues and blobs, for unit tests of the core and of the HTTP handlers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from shared.adapters.blobs import BlobStore, MemoryBlobAccount
from shared.adapters.eventgrid import MemoryEventGrid
from shared.adapters.pointintime import PointInTimeSource
from shared.adapters.postgres.memory import MemoryDatabases
from shared.adapters.queues import MemoryWorkQueue
from shared.adapters.tables import MemoryRowTable
from shared.adapters.webhooks import MemoryTransport
from shared.backups.past import PastFiles
from shared.bootstrap import Services, build_services
from shared.config import Settings, StorageConnection
from shared.domain.addresses import AddressRefused
from tools.azurite import connection_string


class SteppingClock:
    """A clock that advances a fixed step on every reading, so each event has its own time."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start or datetime(2026, 10, 22, 2, 0, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


# Names the fake resolver knows (unit tests resolve nothing for real): a public host, and the usual suspects.
HOSTS = {
    "hooks.example.com": ["93.184.215.14"],
    "localhost": ["127.0.0.1"],
    "rebound.example.com": ["10.1.2.3"],
    "metadata.example.com": ["169.254.169.254"],
    "mixed.example.com": ["93.184.215.14", "192.168.1.5"],
    "six.example.com": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
}


def fake_resolver(host: str, port: int) -> list[str]:
    if host in HOSTS:
        return list(HOSTS[host])
    if all(part.isdigit() for part in host.split(".")) or ":" in host:
        return [host]  # an address literal resolves to itself
    raise AddressRefused(f"The host {host!r} cannot be resolved (unknown name).")


def memory_services(
    clock: SteppingClock | ManualClock | None = None,
    *,
    account: MemoryBlobAccount | None = None,
    databases: MemoryDatabases | None = None,
    queues: dict[str, MemoryWorkQueue] | None = None,
    event_grid: MemoryEventGrid | None = None,
    webhook_transport: MemoryTransport | None = None,
    point_in_time: PointInTimeSource | None = None,
    past_files: PastFiles | None = None,
    **settings: object,
) -> Services:
    """Services on in-memory tables, queues, blobs (``account``), databases (``databases``), Event Grid and
    webhook receivers, and a resolver that knows a few made-up hosts."""
    tables: dict[str, MemoryRowTable] = {}
    queues = {} if queues is None else queues

    def table(name: str) -> MemoryRowTable:
        return tables.setdefault(name, MemoryRowTable(name))

    def queue(name: str) -> MemoryWorkQueue:
        return queues.setdefault(name, MemoryWorkQueue())

    clock = clock or SteppingClock()
    account = account or MemoryBlobAccount(clock=clock)

    def blobs(account_url: str | None, container: str) -> BlobStore:
        """Our containers, and every environment's, exist (as make run provisions them)."""
        return (account if account_url is None else account.other_account(account_url)).store(container)

    # An endpoint nothing listens on: unit tests must not reach storage through the clients.
    storage = StorageConnection(connection_string=connection_string(1, 1, 1))
    return build_services(
        Settings(storage=storage, **settings),  # type: ignore[arg-type]
        tables=table,
        queues=queue,
        blobs=blobs,
        databases=databases or MemoryDatabases(),
        clock=clock,
        event_grid=event_grid,
        webhook_transport=webhook_transport or MemoryTransport(),
        resolver=fake_resolver,
        point_in_time=point_in_time,
        past_files=past_files,
    )


def iter_pages(fetch, limit: int) -> Iterator[list]:  # type: ignore[no-untyped-def]
    token = None
    while True:
        items, token = fetch(limit=limit, continuation=token)
        yield items
        if token is None:
            return


class ManualClock:
    """A clock that moves only when the test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 10, 22, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class QueueSimulator:
    """Delivers a MemoryWorkQueue's messages to a handler in the order the queue would make them
    visible (send time + delay), moving the clock forward to each one: the queue of Azure Storage,
    without its clock."""

    def __init__(self, queue, clock: ManualClock, handle) -> None:  # type: ignore[no-untyped-def]
        self.queue = queue
        self.clock = clock
        self.handle = handle
        self.pending: list[tuple[datetime, int, dict]] = []
        self.delivered: list[dict] = []
        self.seen: list = []  # every SentMessage, in the order sent
        self._sequence = 0

    def collect(self) -> None:
        while self.queue.sent:
            message = self.queue.pop()
            self.seen.append(message)
            self._sequence += 1
            due = self.clock.now + timedelta(seconds=message.delay_seconds)
            self.pending.append((due, self._sequence, message.body))
        self.pending.sort(key=lambda item: (item[0], item[1]))

    def deliver_one(self) -> dict:
        self.collect()
        due, _, body = self.pending.pop(0)
        if due > self.clock.now:
            self.clock.now = due
        self.delivered.append(body)
        self.handle(body)
        self.collect()
        return body

    def run(self, *, until=None, limit: int = 200) -> int:  # type: ignore[no-untyped-def]
        """Deliver until nothing is left (or ``until()`` is true); the number delivered."""
        for count in range(limit):
            self.collect()
            if not self.pending or (until is not None and until()):
                return count
            self.deliver_one()
        raise AssertionError(f"still delivering after {limit} messages: {self.pending[:3]}")
