"""Logging that never carries a secret: SAS signatures, account keys, passwords and bearer tokens
are redacted from every record (message and traceback) before a handler writes it. And logging that
names its span: the trace and span ids on every record while telemetry is exported."""

from __future__ import annotations

import logging
import re

from opentelemetry import trace

_SECRETS = (
    (re.compile(r"(?i)([?&]sig=)[^&\s'\"]+"), r"\1REDACTED"),
    (re.compile(r"(?i)(AccountKey=)[^;\s'\"]+"), r"\1REDACTED"),
    (re.compile(r"(?i)(SharedAccessSignature=)[^;\s'\"]+"), r"\1REDACTED"),
    (re.compile(r"(?i)(password\s*[=:]\s*)[^\s;&'\",]+"), r"\1REDACTED"),
    (re.compile(r"(PGPASSWORD=)\S+"), r"\1REDACTED"),
    (re.compile(r"(?i)(Bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1REDACTED"),
    (re.compile(r"(?i)(SharedKey\s+[^:\s]+:)[A-Za-z0-9+/=]+"), r"\1REDACTED"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of ``logger`` (the root logger by default), once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
            handler.addFilter(RedactingFilter())


class TraceContextFilter(logging.Filter):
    """Puts the current span's trace and span ids on each record (``otelTraceID``, ``otelSpanID``, as
    OpenTelemetry's logging instrumentation names them; ``0`` outside a span), so that a log line is found from
    its span and its span from the line. Installed by shared/telemetry/export.py when telemetry is exported."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        valid = context.is_valid
        record.otelTraceID = format(context.trace_id, "032x") if valid else "0"
        record.otelSpanID = format(context.span_id, "016x") if valid else "0"
        return True
