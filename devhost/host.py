"""``DevHost``: the app's functions served over HTTP, on timers and from queues, in background threads."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from devhost.hostconfig import HostConfig, load_host_config
from devhost.http_app import FunctionsWsgiApp, build_router
from devhost.http_server import DevHttpServer
from devhost.invoker import InvocationResult, Invoker
from devhost.loader import (
    DEFAULT_APP,
    HTTP_TRIGGER,
    QUEUE_TRIGGER,
    SUPPORTED_TRIGGERS,
    TIMER_TRIGGER,
    FunctionInfo,
    LoadedApp,
    load_app,
)
from devhost.manual import manual_details, manual_trigger_value
from devhost.queues import DEFAULT_LEASE_SECONDS, QueueConnections, QueuePoller, resolve_connection
from devhost.routing import Router
from devhost.settings import apply_settings, read_local_settings, remove_settings
from devhost.timers import TimerRunner

log = logging.getLogger("devhost")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7071


class UnknownFunction(LookupError):
    pass


class DevHost:
    """A local stand-in for the Functions host.

    ``DevHost(app_dir).start()`` loads ``local.settings.json`` (without overriding the environment), reads
    ``host.json``, imports the app, then serves HTTP functions on ``host:port`` (``port=0`` picks a free
    one; ``None`` uses local.settings.json ``Host.LocalHttpPort`` or 7071), runs timers on their schedules
    and delivers queue messages, all in daemon threads. ``stop()`` stops taking work, waits up to
    ``shutdown_timeout`` seconds for running invocations, and removes the settings it added.
    """

    def __init__(
        self,
        app_dir: Path | str = ".",
        app: str = DEFAULT_APP,
        *,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        timers: bool = True,
        queues: bool = True,
        load_settings: bool = True,
        queue_lease_seconds: int = DEFAULT_LEASE_SECONDS,
        shutdown_timeout: float = 30.0,
    ) -> None:
        self.app_dir = Path(app_dir).resolve()
        self.app_reference = app
        self.host = host
        self.port = port
        self.timers_enabled = timers
        self.queues_enabled = queues
        self.load_settings = load_settings
        self.queue_lease_seconds = queue_lease_seconds
        self.shutdown_timeout = shutdown_timeout
        self.config = HostConfig()
        self.app: LoadedApp | None = None
        self.invoker: Invoker | None = None
        self._server: DevHttpServer | None = None
        self._server_thread: threading.Thread | None = None
        self._timers: list[TimerRunner] = []
        self._pollers: list[QueuePoller] = []
        self._connections: QueueConnections | None = None
        self._added_settings: list[str] = []
        self._started = False

    # -- lifecycle

    def start(self) -> DevHost:
        if self._started:
            raise RuntimeError("this DevHost is already started")
        try:
            self._start()
        except BaseException:
            self.stop(timeout=1.0)
            raise
        return self

    def _start(self) -> None:
        self._started = True
        local = read_local_settings(self.app_dir) if self.load_settings else None
        if local is not None:
            self._added_settings = apply_settings(local.values)
        if self.port is None:
            self.port = local.local_http_port if local and local.local_http_port else DEFAULT_PORT
        self.config = load_host_config(self.app_dir)
        self.app = load_app(self.app_dir, self.app_reference)
        self._connections = QueueConnections(self.config.queues.message_encoding)
        self.invoker = Invoker(self.app_dir, self.config.function_timeout, queue_sender=self._connections)
        router = build_router(self.app, self.config.route_prefix)
        if self.timers_enabled:
            self._timers = [self._timer(function) for function in self.app.of_type(TIMER_TRIGGER)]
        if self.queues_enabled:
            self._pollers = [self._poller(function) for function in self.app.of_type(QUEUE_TRIGGER)]
        application = FunctionsWsgiApp(self.app, router, self.invoker, self.run_in_background)
        self._server = DevHttpServer(self.host, self.port, application, self.invoker.inflight)
        self.port = int(self._server.server_address[1])
        self._server_thread = self._server.serve_in_thread()
        self._log_functions(router)
        for runner in self._timers:
            runner.start()
        for poller in self._pollers:
            poller.start()

    def _timer(self, function: FunctionInfo) -> TimerRunner:
        assert self.invoker is not None
        try:
            return TimerRunner(function, self.invoker)
        except ValueError as error:
            raise ValueError(f"timer function '{function.name}': {error}") from error

    def _poller(self, function: FunctionInfo) -> QueuePoller:
        assert self.invoker is not None
        assert self._connections is not None
        try:
            resolve_connection(function.connection)
            return QueuePoller(
                function,
                self._connections,
                self.config.queues,
                self.invoker,
                lease_seconds=self.queue_lease_seconds,
            )
        except ValueError as error:
            raise ValueError(f"queue function '{function.name}': {error}") from error

    def stop(self, timeout: float | None = None) -> bool:
        """Stop accepting work and wait for running invocations; True when all of them finished."""
        if not self._started:
            return True
        self._started = False
        wait = self.shutdown_timeout if timeout is None else timeout
        if self._server is not None:
            self._server.stop_accepting()
        for runner in self._timers:
            runner.stop(timeout=0.1)
        for poller in self._pollers:
            poller.stop(timeout=wait)
        finished = True
        if self.invoker is not None:
            finished = self.invoker.inflight.wait_idle(wait)
            if not finished:
                log.warning("Stopped with %d invocation(s) still running", self.invoker.inflight.count)
        if self._server is not None:
            self._server.drop_connections()
        if self._server_thread is not None:
            self._server_thread.join(timeout=5)
        if self._connections is not None:
            self._connections.close()
        remove_settings(self._added_settings)
        self._added_settings = []
        if self.app is not None:
            self.app.unload()
        return finished

    def __enter__(self) -> DevHost:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- use

    @property
    def url(self) -> str:
        """Base URL of the HTTP server, e.g. ``http://127.0.0.1:7071``."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Base URL of the HTTP functions, e.g. ``http://127.0.0.1:7071/api``."""
        prefix = self.config.route_prefix
        return f"{self.url}/{prefix}" if prefix else self.url

    @property
    def functions(self) -> tuple[FunctionInfo, ...]:
        return self.app.functions if self.app is not None else ()

    def fire(self, name: str, input_text: str | None = None) -> InvocationResult:
        """Run a timer or queue function once, now, in this thread (like the admin API, but waiting)."""
        function, value = self._manual(name, input_text)
        assert self.invoker is not None
        return self.invoker.invoke(function, value, details=manual_details(function))

    def run_in_background(self, function: FunctionInfo, value: Any, details: str = "") -> None:
        """Invoke on a new thread (admin API); counted as in flight from now."""
        invoker = self.invoker
        assert invoker is not None
        invoker.inflight.begin()

        def run() -> None:
            try:
                invoker.invoke(function, value, details=details)
            finally:
                invoker.inflight.end()

        threading.Thread(target=run, name=f"devhost-admin-{function.name}", daemon=True).start()

    def _manual(self, name: str, input_text: str | None) -> tuple[FunctionInfo, Any]:
        if self.app is None:
            raise RuntimeError("start the DevHost first")
        function = self.app.find(name)
        if function is None:
            raise UnknownFunction(name)
        return function, manual_trigger_value(function, input_text)

    def _log_functions(self, router: Router) -> None:
        assert self.app is not None
        log.info("Loaded %s from %s (%d functions)", self.app_reference, self.app_dir, len(self.app.functions))
        log.info("Functions:")
        for route in router.routes:
            function: FunctionInfo = route.target
            methods = ",".join(sorted(route.methods)) if route.methods else "ANY"
            log.info("    %s: [%s] %s%s", function.name, methods, self.url, router.url_path(route))
        running = {runner.function.name: runner for runner in self._timers}
        polling = {poller.function.name: poller for poller in self._pollers}
        for function in self.app.functions:
            if function.trigger_type == TIMER_TRIGGER:
                state = "" if function.name in running else " (timers disabled: run it with the admin API)"
                log.info("    %s: %s%s", function.name, function.describe(), state)
            elif function.trigger_type == QUEUE_TRIGGER:
                poller = polling.get(function.name)
                state = f" -> '{poller.queue_name}'" if poller else " (queues disabled: run it with the admin API)"
                log.info("    %s: %s%s", function.name, function.describe(), state)
            elif function.trigger_type not in SUPPORTED_TRIGGERS:
                log.warning(
                    "    %s: %s trigger is not supported; it will not run", function.name, function.trigger_type
                )
        if any(function.trigger_type != HTTP_TRIGGER for function in self.app.functions):
            log.info('Run a timer or queue function now: POST %s/admin/functions/<name> {"input": "..."}', self.url)
