"""Webhook deliveries: signed per Standard Webhooks (``standardwebhooks``: ``webhook-id``,
``webhook-timestamp``, ``webhook-signature`` = HMAC-SHA256 with the webhook's secret, or with each of its
secrets during a rotation's grace period) and sent with an HTTP client that connects to the address that
was checked (no second DNS lookup that could point elsewhere), follows no redirect and reads at most a
little of the answer."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import certifi
import urllib3
from standardwebhooks.webhooks import Webhook as StandardWebhook

from shared.domain.addresses import Endpoint

_ANSWER_BYTES = 512  # of a receiver's answer, kept for the delivery's error message


def signature_headers(secrets: Sequence[str], message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """One ``v1,<signature>`` per secret, space-separated (Standard Webhooks): while a replaced secret is in its
    grace period a receiver that knows either one verifies the delivery."""
    if not secrets:
        raise ValueError("a delivery is signed with at least one secret")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(StandardWebhook(secret).sign(message_id, timestamp, body) for secret in secrets),
    }


@dataclass(frozen=True)
class Answer:
    status: int
    text: str = ""


class WebhookTransport(Protocol):
    def post(self, endpoint: Endpoint, address: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        """POST to the endpoint at ``address``; raises when no HTTP answer came."""


class PinnedTransport:
    """urllib3 pools per (scheme, address, host, port), reused across deliveries; TLS names the host
    (SNI and certificate check) while the connection goes to the checked address."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str, str, int], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def _pool(self, endpoint: Endpoint, address: str) -> urllib3.HTTPConnectionPool:
        key = (endpoint.scheme, address, endpoint.host, endpoint.port)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                if endpoint.scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        address,
                        endpoint.port,
                        maxsize=4,
                        server_hostname=endpoint.host,
                        assert_hostname=endpoint.host,
                        cert_reqs="CERT_REQUIRED",
                        ca_certs=certifi.where(),
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(address, endpoint.port, maxsize=4)
                self._pools[key] = pool
            return pool

    def post(self, endpoint: Endpoint, address: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        response = self._pool(endpoint, address).urlopen(
            "POST",
            endpoint.target,
            body=body,
            headers={**headers, "Host": endpoint.host_header},
            redirect=False,
            retries=False,
            timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
            preload_content=False,
        )
        try:
            text = response.read(_ANSWER_BYTES, decode_content=False).decode("utf-8", errors="replace")
        finally:
            response.release_conn()
        return Answer(response.status, text)


@dataclass
class RecordedPost:
    endpoint: Endpoint
    address: str
    body: bytes
    headers: dict[str, str]


@dataclass
class MemoryTransport:
    """Answers from a script (a status, or an exception to raise), then 200; records every post."""

    answers: list[int | Exception] = field(default_factory=list)
    posts: list[RecordedPost] = field(default_factory=list)

    def post(self, endpoint: Endpoint, address: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        self.posts.append(RecordedPost(endpoint, address, body, dict(headers)))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return Answer(answer, "" if answer < 300 else "receiver error")
