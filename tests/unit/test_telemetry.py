"""Telemetry's parts on their own: which export the app settings choose, the OTLP export reaching a collector and the
console's printing, the gauges of recovery point age and of Stalled operations on the twins and a clock the test
moves, failure codes, and log records naming their span."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry.sdk.trace import TracerProvider

from devhost.invoker import InvocationContext
from shared.adapters.errors import StorageFault
from shared.adapters.tables import MemoryRowTable
from shared.catalog.operations import OperationCatalog
from shared.config import STORAGE_CONNECTION, Settings
from shared.domain.access import Principal
from shared.domain.backups import Actor
from shared.domain.operations import Operation, OperationStatus, Step, StepStatus
from shared.errors import Conflict
from shared.logs import TraceContextFilter
from shared.telemetry import names
from shared.telemetry.export import Export, console_providers, export_of, otlp_providers
from shared.telemetry.gauges import RecoveryPoints, StalledOperations
from shared.telemetry.telemetry import context_of, error_code, trace_parent
from tests.support.core import CoreWorld

ADA = Principal(id="ada", name="Ada")
AZURITE = "UseDevelopmentStorage=true"
CONNECTION = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://example.invalid/"


def settings(**values: str) -> Settings:
    return Settings.from_environ({STORAGE_CONNECTION: AZURITE, **values})


# -- where telemetry goes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "chosen"),
    [
        ({}, Export.NONE),
        ({"APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION}, Export.AZURE_MONITOR),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}, Export.OTLP),
        (
            {"APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"},
            Export.AZURE_MONITOR,
        ),
        ({"APPBACKUPS_TELEMETRY": "console"}, Export.CONSOLE),
        ({"APPBACKUPS_TELEMETRY": "console", "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION}, Export.CONSOLE),
        ({"APPBACKUPS_TELEMETRY": "off", "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION}, Export.NONE),
        ({"APPBACKUPS_TELEMETRY": "auto", "OTEL_EXPORTER_OTLP_ENDPOINT": " "}, Export.NONE),
    ],
)
def test_the_app_settings_choose_where_telemetry_goes(values: dict[str, str], chosen: Export) -> None:
    assert export_of(settings(**values)) is chosen


def test_an_unknown_telemetry_setting_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="APPBACKUPS_TELEMETRY"):
        settings(APPBACKUPS_TELEMETRY="loud")


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, int]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        type(self).received.append((self.path, self.headers.get("Content-Type", ""), length))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, int]]]]:
    received: list[tuple[str, str, int]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()
    server.server_close()
    thread.join()


def test_otlp_export_posts_spans_metrics_and_logs_to_the_collector(collector) -> None:
    endpoint, received = collector
    providers = otlp_providers(endpoint + "/", interval_seconds=3600)
    try:
        with providers.tracer_provider.get_tracer("test").start_as_current_span("backup step dump"):
            pass
        providers.meter_provider.get_meter("test").create_counter(names.OPERATIONS_FAILED).add(1)
        from opentelemetry.instrumentation.logging.handler import LoggingHandler

        assert providers.logger_provider is not None
        logger = logging.getLogger("appbackups.test.otlp")
        handler = LoggingHandler(logger_provider=providers.logger_provider)
        logger.addHandler(handler)
        try:
            logger.warning("a line for the collector")
        finally:
            logger.removeHandler(handler)
    finally:
        providers.shutdown()  # exports what is buffered
    paths = {path: content_type for path, content_type, length in received if length > 0}
    assert paths == {
        "/v1/traces": "application/x-protobuf",
        "/v1/metrics": "application/x-protobuf",
        "/v1/logs": "application/x-protobuf",
    }


def test_console_export_prints_each_span_as_it_ends() -> None:
    out = io.StringIO()
    providers = console_providers(out, interval_seconds=3600)
    try:
        with providers.tracer_provider.get_tracer("test").start_as_current_span("restore step switch") as span:
            span.set_attribute(names.BYTES, 42)
        printed = json.loads(out.getvalue())
    finally:
        providers.shutdown()
    assert (printed["name"], printed["attributes"][names.BYTES]) == ("restore step switch", 42)
    assert printed["resource"]["attributes"]["service.name"] == "appbackups"


# -- trace context ---------------------------------------------------------------------------------------


def test_a_traceparent_is_kept_and_read_back_and_a_malformed_one_names_no_parent() -> None:
    provider = TracerProvider()
    with provider.get_tracer("test").start_as_current_span("request") as span:
        kept = trace_parent(span)
        record = logging.LogRecord("appbackups.x", logging.INFO, __file__, 1, "inside", (), None)
        TraceContextFilter().filter(record)
    context = span.get_span_context()
    assert kept == f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    assert (record.otelTraceID, record.otelSpanID) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    restored = context_of(kept)
    assert restored is not None
    assert context_of("00-zz-bad-01") is None
    assert context_of("") is None
    assert trace_parent() == ""  # outside any span
    outside = logging.LogRecord("appbackups.x", logging.INFO, __file__, 1, "outside", (), None)
    TraceContextFilter().filter(outside)
    assert (outside.otelTraceID, outside.otelSpanID) == ("0", "0")


def test_the_development_host_hands_an_http_function_the_callers_traceparent() -> None:
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert InvocationContext("id", "f", ".", caller).trace_context.trace_parent == caller
    assert InvocationContext("id", "f", ".", "").trace_context.trace_parent == ""
    assert InvocationContext("id", "f", ".").trace_context.trace_parent.startswith("00-")


def test_a_failure_is_counted_by_a_stable_code() -> None:
    from shared.backups.files import MissingFileDocument

    assert error_code(Conflict("busy", code="environment_busy")) == "environment_busy"
    assert error_code(MissingFileDocument("gone")) == "missing_file_document"
    assert error_code(StorageFault("down")) == "storage_fault"
    assert error_code(KeyError("x")) == "unexpected"


# -- gauges ------------------------------------------------------------------------------------------------


def ages(points: RecoveryPoints) -> dict[str, float]:
    return {attributes[names.ENVIRONMENT]: value for value, attributes in points.ages()}


def test_recovery_point_age_counts_from_the_latest_backup_or_restorable_instant() -> None:
    world = CoreWorld()
    services = world.services
    backed_up, never, archived = world.app(), world.app(), world.app(point_in_time=True)
    points = RecoveryPoints(
        services.environment_catalog,
        services.backup_catalog,
        lambda environment: services.past.window_of(environment).latest,
        world.clock,
        refresh=timedelta(minutes=10),
    )
    registered = world.clock.now
    world.settle(str(services.backups.request(backed_up.environment_id, ADA).operation_id))
    finished = services.backup_catalog.latest_recovery_point(backed_up.environment_id).finished_on
    world.clock.advance(3600)
    archived.archive()  # its archive reaches now: its recovery point is now, without a backup
    world.clock.advance(60)

    assert ages(points) == {
        backed_up.environment_id: (world.clock.now - finished).total_seconds(),
        never.environment_id: (world.clock.now - registered).total_seconds(),  # since its registration
        archived.environment_id: 60.0,
    }
    # The instants are read again only after the refresh; the ages grow with the clock meanwhile.
    world.settle(str(services.backups.request(never.environment_id, ADA).operation_id))
    world.clock.advance(120)
    assert ages(points)[never.environment_id] == (world.clock.now - registered).total_seconds()
    world.clock.advance(600)
    backup = services.backup_catalog.latest_recovery_point(never.environment_id)
    assert ages(points)[never.environment_id] == (world.clock.now - backup.finished_on).total_seconds()


def test_an_unreadable_recovery_window_leaves_the_backups_to_count() -> None:
    world = CoreWorld()
    services = world.services
    app = world.app(point_in_time=True)
    world.settle(str(services.backups.request(app.environment_id, ADA).operation_id))
    finished = services.backup_catalog.latest_recovery_point(app.environment_id).finished_on

    def unreadable(environment: object) -> None:
        raise StorageFault("the archive cannot be listed")

    world.clock.advance(30)
    points = RecoveryPoints(services.environment_catalog, services.backup_catalog, unreadable, world.clock)
    assert ages(points) == {app.environment_id: (world.clock.now - finished).total_seconds()}


def operation(kind: str, environment: str, clock_now, *, lease_ended_ago: timedelta | None) -> Operation:  # type: ignore[no-untyped-def]
    running = lease_ended_ago is not None
    return Operation(
        id=f"{kind}-{environment}-{lease_ended_ago}",
        kind=kind,
        status=OperationStatus.RUNNING,
        environment_id=environment,
        namespace="ns",
        created_on=clock_now - timedelta(hours=1),
        updated_on=clock_now - timedelta(hours=1),
        created_by=Actor("ada", "Ada"),
        steps=(Step(name="dump", title="Dump", status=StepStatus.RUNNING if running else StepStatus.PENDING),),
        lease_owner="worker" if running else None,
        lease_until=clock_now - lease_ended_ago if lease_ended_ago is not None else None,
    )


def test_operations_stalled_longer_than_their_bound_are_counted_per_kind_and_environment() -> None:
    world = CoreWorld()
    now = world.clock.now
    catalog = OperationCatalog(MemoryRowTable())
    bound = timedelta(minutes=5)
    catalog.add(operation("backup", "env-a", now, lease_ended_ago=timedelta(minutes=6)))  # beyond the bound
    catalog.add(operation("restore", "env-a", now, lease_ended_ago=timedelta(minutes=4)))  # Stalled, within it
    catalog.add(operation("restore", "env-b", now, lease_ended_ago=-timedelta(minutes=1)))  # its worker is alive
    catalog.add(operation("backup", "env-b", now, lease_ended_ago=None))  # queued, not started
    ended = operation("backup", "env-c", now, lease_ended_ago=timedelta(hours=2))
    catalog.add(replace(ended, status=OperationStatus.FINISHED, announced=True))

    counts = {
        (attributes[names.OPERATION_KIND], attributes[names.ENVIRONMENT]): value
        for value, attributes in StalledOperations(catalog, world.clock, bound).counts()
    }
    assert counts == {("backup", "env-a"): 1, ("restore", "env-a"): 0, ("restore", "env-b"): 0, ("backup", "env-b"): 0}
    assert world.services.operations.settings.stall_bound == timedelta(minutes=3 + 2) + timedelta(seconds=5)
