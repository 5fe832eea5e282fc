"""Storage that does not answer, made at the transport seam (``StorageClients(wrap_transport=…)``): chosen
requests fail as a connection to an unreachable account fails, before they reach Azurite. The SDK's own
retries see it too, so an outage must outlast them to reach the code under test, as a real one would."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import HttpTransport

from shared.adapters.metering import DelegatingTransport, classify

WRITES = frozenset({"PUT", "POST", "PATCH", "MERGE", "DELETE"})


@dataclass
class _Rule:
    service: str
    container: str  # a blob container, table or queue
    methods: frozenset[str]
    left: int  # requests still to fail
    url_contains: str  # "" for any; a table row's keys are in its URL


class StorageOutage:
    """Fails the next ``times`` requests that match a rule, then lets them through again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self.failed: list[tuple[str, str, str]] = []  # (service, method, container) of each failed request

    def fail(
        self, service: str, container: str, *, times: int, methods: frozenset[str] = WRITES, url_contains: str = ""
    ) -> None:
        with self._lock:
            self._rules.append(_Rule(service, container, methods, times, url_contains))

    def left(self) -> int:
        with self._lock:
            return sum(rule.left for rule in self._rules)

    def should_fail(self, service: str, request: Any) -> bool:
        container = classify(service, request.method, request.url, request.headers).container
        method = request.method.upper()
        with self._lock:
            for rule in self._rules:
                if (
                    rule.left
                    and (rule.service, rule.container) == (service, container)
                    and method in rule.methods
                    and rule.url_contains in request.url
                ):
                    rule.left -= 1
                    self.failed.append((service, method, container))
                    return True
        return False

    def wrap(self, inner: HttpTransport, service: str) -> HttpTransport:
        return _FailingTransport(inner, service, self)


class _FailingTransport(DelegatingTransport):
    def __init__(self, inner: HttpTransport, service: str, outage: StorageOutage) -> None:  # type: ignore[type-arg]
        super().__init__(inner)
        self._service = service
        self._outage = outage

    def send(self, request: Any, **kwargs: Any) -> Any:
        if self._outage.should_fail(self._service, request):
            raise ServiceRequestError(f"storage unreachable (a test's outage): {request.method} {request.url}")
        return super().send(request, **kwargs)
