"""A webhook receiver for the tests: a small HTTP server on a free loopback port that records every
request (headers, body, when) and answers from a script — a status, after an optional delay — then 200.
It can be stopped (the receiver is down: connections are refused) and started again on the same port."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tools.azurite import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    arrived: float  # time.time()
    answered: float = 0.0
    status: int = 0

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.script: list[tuple[int, float]] = []  # (status, seconds to wait before answering)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/appbackups"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                record = Received({k.lower(): v for k, v in self.headers.items()}, body, time.time())
                with receiver._lock:
                    receiver.received.append(record)
                    status, delay = receiver.script.pop(0) if receiver.script else (200, 0.0)
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                record.answered, record.status = time.time(), status

            def log_message(self, format: str, *args: object) -> None:
                return

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self, event_type: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if event_type is None or r.event["type"] == event_type]

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.events(event_type) if r.status and 200 <= r.status < 300]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"{event_type}: {len(found)} of {count} after {timeout} s: " + str(
                [(r.event["type"], r.status) for r in self.events()]
            )
            time.sleep(0.1)
