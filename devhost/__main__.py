"""Command line: ``python -m devhost serve | fire NAME | list``."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devhost.host import DEFAULT_HOST, DevHost, UnknownFunction
from devhost.hostconfig import load_host_config
from devhost.invoker import Invoker
from devhost.loader import DEFAULT_APP, HTTP_TRIGGER, TIMER_TRIGGER, load_app
from devhost.manual import NotManuallyRunnable, manual_details, manual_trigger_value
from devhost.queues import DEFAULT_LEASE_SECONDS, QueueConnections
from devhost.routing import RouteTemplate
from devhost.settings import apply_settings, read_local_settings, resolve_references
from shared.schedules.ncrontab import next_occurrence
from shared.telemetry.export import flush as flush_telemetry

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("devhost")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.log_level)
    try:
        return int(args.handler(args))
    except (ValueError, ImportError, OSError) as error:
        print(f"devhost: {error}", file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devhost", description="Run an Azure Functions Python (v2) app locally without Core Tools."
    )
    parser.add_argument("--log-level", default="INFO", help="host log level (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True)

    def app_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--app-dir", type=Path, default=Path(), help="folder with function_app.py (default .)")
        command.add_argument("--app", default=DEFAULT_APP, help=f"MODULE:ATTRIBUTE of the app (default {DEFAULT_APP})")

    serve = commands.add_parser("serve", help="serve HTTP functions, run timers and queue triggers until stopped")
    app_options(serve)
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    serve.add_argument("--port", type=int, default=None, help="port (default: Host.LocalHttpPort or 7071)")
    serve.add_argument("--no-timers", action="store_true", help="do not run timer functions on their schedule")
    serve.add_argument("--no-queues", action="store_true", help="do not poll queues for queue functions")
    serve.add_argument("--lease-seconds", type=int, default=DEFAULT_LEASE_SECONDS, help=argparse.SUPPRESS)
    serve.add_argument(
        "--shutdown-timeout", type=float, default=30.0, help="seconds to let running invocations finish (default 30)"
    )
    serve.set_defaults(handler=_serve)

    fire = commands.add_parser("fire", help="run one timer or queue function once and exit")
    fire.add_argument("name", help="function name")
    app_options(fire)
    fire.add_argument("--input", default=None, help="queue message body (ignored for timers)")
    fire.set_defaults(handler=_fire)

    listing = commands.add_parser("list", help="list the app's functions and their triggers")
    app_options(listing)
    listing.set_defaults(handler=_list)
    return parser


class _TracedFormatter(logging.Formatter):
    """The host's log line, ending with the span it was written in while telemetry is exported (the ids
    shared/logs.py's TraceContextFilter puts on the record): the line found from its span, and back."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id = getattr(record, "otelTraceID", "0")
        if trace_id != "0":
            line += f" [trace {trace_id} span {getattr(record, 'otelSpanID', '0')}]"
        return line


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TracedFormatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    # The Azure SDKs log every HTTP request at INFO.
    logging.getLogger("azure").setLevel(logging.WARNING)


def _serve(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("Received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    host = DevHost(
        args.app_dir,
        args.app,
        host=args.host,
        port=args.port,
        timers=not args.no_timers,
        queues=not args.no_queues,
        queue_lease_seconds=args.lease_seconds,
        shutdown_timeout=args.shutdown_timeout,
    )
    host.start()
    log.info("Listening on %s (Ctrl+C to stop)", host.url)
    while not stop.wait(0.5):
        pass
    if host.stop():
        log.info("Stopped")
        return EXIT_OK
    log.warning("Stopped; invocations still running after %gs were abandoned", args.shutdown_timeout)
    flush_telemetry()  # what the console or OTLP exporters still hold: os._exit skips their exit hooks
    logging.shutdown()
    os._exit(EXIT_OK)  # do not wait for the worker threads of abandoned invocations


def _fire(args: argparse.Namespace) -> int:
    app_dir = args.app_dir.resolve()
    apply_settings(read_local_settings(app_dir).values)
    config = load_host_config(app_dir)
    app = load_app(app_dir, args.app)
    function = app.find(args.name)
    try:
        if function is None:
            raise UnknownFunction(args.name)
        value = manual_trigger_value(function, args.input)
    except UnknownFunction:
        names = ", ".join(f.name for f in app.functions) or "none"
        print(f"devhost: no function named '{args.name}' (functions: {names})", file=sys.stderr)
        return EXIT_USAGE
    except NotManuallyRunnable as error:
        print(f"devhost: {error}", file=sys.stderr)
        return EXIT_USAGE
    connections = QueueConnections(config.queues.message_encoding)
    try:
        invoker = Invoker(app_dir, config.function_timeout, queue_sender=connections)
        result = invoker.invoke(function, value, details=manual_details(function))
    finally:
        connections.close()
    return EXIT_OK if result.succeeded else EXIT_FAILED


def _list(args: argparse.Namespace) -> int:
    app_dir = args.app_dir.resolve()
    apply_settings(read_local_settings(app_dir).values)
    config = load_host_config(app_dir)
    app = load_app(app_dir, args.app)
    now = dt.datetime.now(dt.UTC)
    for function in app.functions:
        line = f"{function.name}: {function.describe()}"
        if function.trigger_type == HTTP_TRIGGER:
            RouteTemplate.parse(function.route)  # report a bad template here rather than at serve time
            prefix = f"/{config.route_prefix}" if config.route_prefix else ""
            methods = ",".join(function.methods or ["ANY"])
            line = f"{function.name}: httpTrigger [{methods}] {prefix}/{function.route.strip('/')}"
        elif function.trigger_type == TIMER_TRIGGER:
            try:
                schedule = resolve_references(function.schedule, what="schedule")
                line += f", next {next_occurrence(schedule, now).isoformat()}"
            except ValueError as error:
                line += f" (invalid: {error})"
        print(line)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
