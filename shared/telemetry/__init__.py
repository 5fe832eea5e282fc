"""Telemetry: the service's spans, metrics and log correlation on the OpenTelemetry API (``Telemetry``), the gauges
read lazily from the catalog and the queues, and where they are exported (``export``). docs/operations/telemetry.md
says what each one means; docs/decisions/0015 why it is built so."""

from shared.telemetry.telemetry import Telemetry

__all__ = ["Telemetry"]
