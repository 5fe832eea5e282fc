"""Counting storage transactions at the transport seam.

Azure bills Blob, Table and Queue storage per request ("transaction"), in classes: writes, lists,
reads, and all other operations. ``MeteringTransport`` wraps the ``azure.core`` HTTP transport of a
storage client and hands every request that reaches the wire to a ``StorageMeter``, which sorts it
by service, kind and container. Retries are counted too (each is a request Azure bills), so the count
is what a storage account would see. The benchmarks and the tests that hold "a backup touches only
what it needs" read the meter; in production no meter is set and the transport is the plain one.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.pipeline.transport import HttpTransport

# The kinds a request is counted as. Blob: list (one page of a listing), copy (Copy Blob), write
# (Put Blob, Put Block, Put Block List), read (Get Blob: one request per chunk), properties (Get
# Blob Properties, metadata, leases, container properties), delete. Table and queue: one kind each.
KINDS = ("list", "copy", "write", "read", "properties", "delete", "table", "queue")


@dataclass(frozen=True)
class Request:
    service: str  # blob | table | queue
    kind: str  # one of KINDS
    container: str  # blob container (or table / queue name); "" for the account
    prefix: str | None = None  # a listing's prefix


def _path_parts(url: str) -> tuple[list[str], dict[str, list[str]]]:
    parts = urlsplit(url)
    segments = [unquote(segment) for segment in parts.path.split("/") if segment]
    host = parts.hostname or ""
    # Azurite (and the emulator's connection strings) address the account in the path.
    if segments and (host in ("localhost", "127.0.0.1", "::1") or host.replace(".", "").isdigit()):
        segments = segments[1:]
    return segments, parse_qs(parts.query)


def classify(service: str, method: str, url: str, headers: Any) -> Request:
    segments, query = _path_parts(url)
    container = segments[0] if segments else ""
    if service == "table":
        return Request("table", "table", container.split("(")[0])
    if service == "queue":
        return Request("queue", "queue", container)
    comp = (query.get("comp") or [""])[0]
    method = method.upper()
    if comp == "list":
        return Request("blob", "list", container, (query.get("prefix") or [""])[0])
    if method == "DELETE":
        return Request("blob", "delete", container)
    if method == "PUT" and any(key.lower() == "x-ms-copy-source" for key in headers):
        return Request("blob", "copy", container)
    if method == "PUT" and len(segments) > 1 and comp in ("", "block", "blocklist", "appendblock", "page"):
        return Request("blob", "write", container)
    if method == "GET" and len(segments) > 1 and comp == "":
        return Request("blob", "read", container)
    return Request("blob", "properties", container)


class StorageMeter:
    """Counts of the storage requests made through metered clients, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[Request] = Counter()

    def record(self, request: Request) -> None:
        with self._lock:
            self._counts[request] += 1

    def counts(self) -> Counter[Request]:
        with self._lock:
            return Counter(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    @contextmanager
    def measuring(self) -> Iterator[Measurement]:
        """The requests made while the block runs (by every thread using the metered clients)."""
        measurement = Measurement(self, self.counts())
        try:
            yield measurement
        finally:
            measurement.stop()


class Measurement:
    def __init__(self, meter: StorageMeter, start: Counter[Request]) -> None:
        self._meter = meter
        self._start = start
        self._end: Counter[Request] | None = None

    def stop(self) -> None:
        self._end = self._meter.counts()

    @property
    def requests(self) -> Counter[Request]:
        end = self._end if self._end is not None else self._meter.counts()
        return end - self._start

    def count(self, kind: str | None = None, *, container: str | None = None, service: str | None = None) -> int:
        return sum(
            number
            for request, number in self.requests.items()
            if (kind is None or request.kind == kind)
            and (container is None or request.container == container)
            and (service is None or request.service == service)
        )

    def listed_prefixes(self, container: str) -> Counter[str]:
        """Pages listed per prefix in ``container``."""
        return Counter(
            {
                request.prefix or "": number
                for request, number in self.requests.items()
                if request.kind == "list" and request.container == container
            }
        )

    def by_kind(self) -> dict[str, int]:
        return counts_by_kind(self.requests)


def counts_by_kind(counts: Counter[Request]) -> dict[str, int]:
    totals = dict.fromkeys(KINDS, 0)
    for request, number in counts.items():
        totals[request.kind] += number
    return totals


class DelegatingTransport(HttpTransport):  # type: ignore[type-arg]
    """An ``azure.core`` transport that hands every request to another one: the base of the transports that
    stand between the storage clients and the wire (counting requests here, failing them in tests)."""

    def __init__(self, inner: HttpTransport) -> None:  # type: ignore[type-arg]
        self._inner = inner

    def send(self, request: Any, **kwargs: Any) -> Any:
        return self._inner.send(request, **kwargs)

    def open(self) -> None:
        self._inner.open()

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> DelegatingTransport:
        self._inner.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self._inner.__exit__(*args)


class MeteringTransport(DelegatingTransport):
    """Counts each request, then hands it to the real transport."""

    def __init__(self, inner: HttpTransport, meter: StorageMeter, service: str) -> None:  # type: ignore[type-arg]
        super().__init__(inner)
        self._meter = meter
        self._service = service

    def send(self, request: Any, **kwargs: Any) -> Any:
        self._meter.record(classify(self._service, request.method, request.url, request.headers))
        return super().send(request, **kwargs)
