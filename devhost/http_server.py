"""The HTTP server of the development host: werkzeug's threaded WSGI server, with a clean stop. Why werkzeug, and
what is added to it for the host's lifecycle: docs/decisions/0013."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler, select_address_family

from devhost.invoker import InFlight

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger("devhost.http")


class _RequestHandler(WSGIRequestHandler):
    server: DevHttpServer

    @property
    def server_version(self) -> str:  # type: ignore[override]
        return "devhost"

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def handle_one_request(self) -> None:
        if self.server.closing:  # a request that arrives once the host is stopping is not started
            self.close_connection = True
            return
        super().handle_one_request()

    def run_wsgi(self) -> None:
        with self.server.inflight.track():  # in flight from its parsed head to its last byte written
            super().run_wsgi()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # werkzeug's access log, at DEBUG: the host's own log has one line per invocation
        log.debug('%s - "%s" %s %s', self.address_string(), self.requestline, code, size)

    def log(self, type: str, message: str, *args: Any) -> None:
        # Malformed requests and dropped connections: the client's doing, as in http.server's log_message.
        log.debug("%s - " + message, self.address_string(), *args)


class DevHttpServer(ThreadedWSGIServer):
    """Serves ``application`` on ``host:port`` (``port=0``: a free one) until :meth:`stop_accepting`."""

    def __init__(self, host: str, port: int, application: WSGIApplication, inflight: InFlight) -> None:
        self.inflight = inflight
        self.closing = False
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # Bound here, so a port in use is an OSError for the caller (werkzeug would print and exit).
        listener = socket.create_server((host, port), family=select_address_family(host, port), backlog=128)
        try:
            super().__init__(host, port, application, handler=_RequestHandler, fd=listener.fileno())
        finally:
            listener.close()  # werkzeug serves from its own duplicate of the descriptor

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="devhost-http", daemon=True)
        thread.start()
        return thread

    def stop_accepting(self) -> None:
        """Stop taking connections and requests; requests already running go on."""
        self.closing = True
        self.shutdown()
        self.server_close()

    def opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def drop_connections(self) -> None:
        """Shut down the connections still open, so that the handler threads waiting on them end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
