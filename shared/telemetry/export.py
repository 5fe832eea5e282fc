"""Where telemetry goes, decided in one place from the app settings, once per process: Application Insights through
Azure Monitor's OpenTelemetry distro when a connection string is set, else an OTLP/HTTP collector when an endpoint is
set, else the console when APPBACKUPS_TELEMETRY=console asks for it (the development host), else nowhere."""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

from shared.config import Settings
from shared.logs import TraceContextFilter

LOGGER = "appbackups"  # the loggers whose records are exported (every module's logger is appbackups.*)
METRIC_INTERVAL_SECONDS = 60.0


class Export(StrEnum):
    AZURE_MONITOR = "azure-monitor"
    OTLP = "otlp"
    CONSOLE = "console"
    NONE = "none"


def export_of(settings: Settings) -> Export:
    """What APPBACKUPS_TELEMETRY, APPLICATIONINSIGHTS_CONNECTION_STRING and OTEL_EXPORTER_OTLP_ENDPOINT choose."""
    if settings.telemetry_export == "off":
        return Export.NONE
    if settings.telemetry_export == "console":
        return Export.CONSOLE
    if settings.appinsights_connection_string:
        return Export.AZURE_MONITOR
    if settings.otlp_endpoint:
        return Export.OTLP
    return Export.NONE


def resource() -> Resource:
    """service.name appbackups, unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise."""
    return Resource.create({SERVICE_NAME: "appbackups"})


@dataclass
class Providers:
    """The SDK providers of one export (OTLP or the console): what ``install`` makes global."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider | None = None
    readers: list[MetricReader] = field(default_factory=list)

    def shutdown(self) -> None:
        """Export what is buffered, then stop."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        if self.logger_provider is not None:
            self.logger_provider.shutdown()


def otlp_providers(endpoint: str, interval_seconds: float = METRIC_INTERVAL_SECONDS) -> Providers:
    """Spans, metrics and log records to an OTLP/HTTP collector at ``endpoint`` (its /v1/traces, /v1/metrics and
    /v1/logs); OTEL_EXPORTER_OTLP_HEADERS and the other OTEL_EXPORTER_OTLP_* settings apply as usual."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    base = endpoint.rstrip("/")
    service = resource()
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics"), export_interval_millis=interval_seconds * 1000
    )
    tracer_provider = TracerProvider(resource=service)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
    logger_provider = LoggerProvider(resource=service)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs")))
    return Providers(tracer_provider, MeterProvider([reader], resource=service), logger_provider, [reader])


def console_providers(out: IO[str] | None = None, interval_seconds: float = METRIC_INTERVAL_SECONDS) -> Providers:
    """Spans as they end, and metrics every ``interval_seconds``, printed as JSON to ``out`` (standard output). Log
    records stay with the host's own handlers, which print them with their trace and span ids."""
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    stream = out or sys.stdout
    service = resource()
    processor: SpanProcessor = SimpleSpanProcessor(ConsoleSpanExporter(out=stream))
    tracer_provider = TracerProvider(resource=service)
    tracer_provider.add_span_processor(processor)
    reader = PeriodicExportingMetricReader(
        ConsoleMetricExporter(out=stream), export_interval_millis=interval_seconds * 1000
    )
    return Providers(tracer_provider, MeterProvider([reader], resource=service), None, [reader])


_lock = threading.Lock()
_chosen: Export | None = None
_installed: Providers | None = None


def configure_export(settings: Settings) -> Export:
    """Install the export the settings choose as the process's global providers, once (later calls return the
    first choice), and put the trace and span ids on the log records of every handler of the root logger."""
    global _chosen, _installed
    with _lock:
        if _chosen is not None:
            return _chosen
        chosen = export_of(settings)
        log = logging.getLogger("appbackups.telemetry")
        try:
            if chosen is Export.AZURE_MONITOR:
                from shared.clients import export_to_azure_monitor

                assert settings.appinsights_connection_string is not None
                export_to_azure_monitor(settings.appinsights_connection_string, LOGGER)
            elif chosen is Export.OTLP:
                assert settings.otlp_endpoint is not None
                _installed = _install(otlp_providers(settings.otlp_endpoint))
            elif chosen is Export.CONSOLE:
                _installed = _install(console_providers())
        except Exception:  # the service runs without telemetry rather than not at all
            log.exception("telemetry (%s) could not be set up; the service goes on without it", chosen.value)
            chosen = Export.NONE
        if chosen is not Export.NONE:
            install_log_correlation()
        _chosen = chosen
        log.info("telemetry: %s", chosen.value)
        return chosen


def _install(providers: Providers) -> Providers:
    trace.set_tracer_provider(providers.tracer_provider)
    metrics.set_meter_provider(providers.meter_provider)
    if providers.logger_provider is not None:
        from opentelemetry.instrumentation.logging.handler import LoggingHandler

        set_logger_provider(providers.logger_provider)
        logging.getLogger(LOGGER).addHandler(LoggingHandler(logger_provider=providers.logger_provider))
    return providers


def install_log_correlation(target: logging.Logger | None = None) -> None:
    """Put TraceContextFilter on every handler of ``target`` (the root logger by default), once."""
    for handler in (target or logging.getLogger()).handlers:
        if not any(isinstance(existing, TraceContextFilter) for existing in handler.filters):
            handler.addFilter(TraceContextFilter())


def flush(timeout_millis: int = 5000) -> None:
    """Export what the process's providers hold now (the development host, before it exits)."""
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        force_flush: Any = getattr(provider, "force_flush", None)
        if force_flush is not None:
            force_flush(timeout_millis)
