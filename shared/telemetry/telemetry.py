"""The service's spans and metrics, on the OpenTelemetry API alone (where they go is ``shared.telemetry.export``'s
business): a span per HTTP request, per operation launch, per run of an operation on a worker and per step, all of
one trace; the metrics of backups, restores and failures at the moment each is known; gauges read lazily."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.domain.operations import Operation, OperationStatus, Step, StepStatus
from shared.errors import AppError
from shared.faults import Fault
from shared.telemetry import names

logger = logging.getLogger("appbackups.telemetry")

_W3C = TraceContextTextMapPropagator()
_SCOPE = "appbackups"

# Advisory buckets (an OTLP backend's histograms; Azure Monitor keeps count, sum, min and max).
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0)
SIZE_BUCKETS = tuple(float(1 << shift) for shift in range(20, 44, 2))  # 1 MiB to 4 TiB, by fours

Reading = Iterable[tuple[float, Mapping[str, str]]]  # what a gauge reads: (value, attributes) per series


def error_code(error: BaseException) -> str:
    """A failure's stable code, as the counter of failed operations names it: an AppError's own code, a fault's
    class in snake case (DrillFailed: ``drill_failed``), ``unexpected`` for anything else."""
    if isinstance(error, AppError):
        return error.code
    if isinstance(error, Fault):
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()
    return "unexpected"


def trace_parent(span: Span | None = None) -> str:
    """The W3C traceparent of ``span`` (default: the current one); empty when there is no valid span."""
    carrier: dict[str, str] = {}
    context = trace.set_span_in_context(span) if span is not None else None
    _W3C.inject(carrier, context=context)
    return carrier.get("traceparent", "")


def context_of(traceparent: str | None) -> Context | None:
    """The context whose span is the one ``traceparent`` names; None when it names none (absent or malformed)."""
    if not traceparent:
        return None
    context = _W3C.extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def _operation_attributes(operation: Operation) -> dict[str, str]:
    return {
        names.ENVIRONMENT: operation.environment_id,
        names.NAMESPACE: operation.namespace,
        names.OPERATION_KIND: operation.kind,
        names.OPERATION_ID: operation.id,
    }


def measured(step: Step) -> tuple[int, int]:
    """Bytes and files a step moved: what its progress reported, or (a backup's dump step, whose progress counts
    file documents only) the dump and file documents it stored."""
    progress = step.progress
    moved = progress.bytes_done + progress.file_bytes_done
    stored = int(step.output.get("dumpSize") or 0) + int(step.output.get("filesSize") or 0)
    return max(moved, stored), progress.files_done


class Telemetry:
    """Spans and instruments of one tracer and one meter: by default the global providers (what
    ``shared.telemetry.export`` installed, or the API's no-ops), or the ones given (tests: the SDK's in-memory
    exporters)."""

    def __init__(
        self, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
    ) -> None:
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(_SCOPE)
        self._meter = (meter_provider or metrics.get_meter_provider()).get_meter(_SCOPE)
        meter = self._meter
        self._backup_duration = meter.create_histogram(
            names.BACKUP_DURATION,
            unit="s",
            description="From a backup's request to its finish, per environment",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._backup_size = meter.create_histogram(
            names.BACKUP_SIZE,
            unit="By",
            description="A finished backup's database dump and file documents, per environment",
            explicit_bucket_boundaries_advisory=SIZE_BUCKETS,
        )
        self._restore_duration = meter.create_histogram(
            names.RESTORE_DURATION,
            unit="s",
            description="A restore from its request to its finish, and a drill's measured load of the dump",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._failed = meter.create_counter(
            names.OPERATIONS_FAILED, unit="{operation}", description="Operations that failed, by error code"
        )
        self._storage_used = meter.create_gauge(
            names.STORAGE_USED, unit="By", description="Bytes stored per namespace, measured after each prune"
        )
        self._gauges: list[Any] = []
        self._lock = threading.Lock()

    # -- spans ----------------------------------------------------------------------------------------

    @contextmanager
    def request(self, method: str, route: str, path: str, parents: Iterable[str | None] = ()) -> Iterator[Span]:
        """The span of one HTTP request. Its parent: the span current here (a host that attached its own), else
        the first of ``parents`` that is a valid traceparent (the host's invocation, the caller's header), else
        none (a new trace). Every operation the request launches is of its trace."""
        context = None
        if not trace.get_current_span().get_span_context().is_valid:
            context = next(filter(None, (context_of(parent) for parent in parents)), None)
        attributes = {"http.request.method": method, "http.route": f"/api/{route}", "url.path": path}
        with self._tracer.start_as_current_span(
            f"{method} /api/{route}",
            context=context,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    @staticmethod
    def responded(span: Span, status: int) -> None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))

    @contextmanager
    def launch(self, kind: str, operation_id: str, environment_id: str, namespace: str) -> Iterator[str]:
        """The span of recording an operation (a child of the request or timer it is launched from); yields its
        traceparent, which the operation keeps so that its runs, later and on other workers, continue the trace."""
        attributes = {
            names.ENVIRONMENT: environment_id,
            names.NAMESPACE: namespace,
            names.OPERATION_KIND: kind,
            names.OPERATION_ID: operation_id,
        }
        with self._tracer.start_as_current_span(f"{kind} launch", attributes=attributes) as span:
            yield trace_parent(span)

    @contextmanager
    def operation_run(self, current: Callable[[], Operation]) -> Iterator[Span]:
        """The span of one worker's run of an operation (its steps until it ends, waits or hands over), a child
        of the operation's launch. ``current`` reads the operation as the run leaves it."""
        operation = current()
        with self._tracer.start_as_current_span(
            f"{operation.kind} operation",
            context=context_of(operation.trace_parent),
            kind=SpanKind.CONSUMER,
            attributes=_operation_attributes(operation),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            finally:
                left = current()
                steps = [measured(step) for step in left.steps if step.attempts]
                span.set_attributes(
                    {
                        names.OPERATION_STATUS: (left.ending or left.status).value,
                        names.BYTES: sum(moved for moved, _ in steps),
                        names.FILES: max((files for _, files in steps), default=0),
                    }
                )
                if (left.ending or left.status) is OperationStatus.FAILED:
                    span.set_status(Status(StatusCode.ERROR, left.error[:200]))

    @contextmanager
    def step(self, current: Callable[[], Operation], index: int) -> Iterator[Span]:
        """The span of one attempt of one step (the undo included), a child of the run."""
        operation = current()
        step = operation.steps[index]
        attributes = {**_operation_attributes(operation), names.STEP: step.name, names.ATTEMPT: step.attempts}
        with self._tracer.start_as_current_span(
            f"{operation.kind} step {step.name}",
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            finally:
                ended = current().steps[index]
                moved, files = measured(ended)
                span.set_attributes({names.BYTES: moved, names.FILES: files, names.STEP_STATUS: ended.status.value})
                if ended.status is StepStatus.FAILED:
                    span.set_status(Status(StatusCode.ERROR, ended.message[:200]))

    @staticmethod
    def attempt_failed(span: Span, error: BaseException) -> None:
        """The step's attempt ended in ``error`` (retried or not)."""
        span.record_exception(error)
        span.set_attribute(names.ERROR_CODE, error_code(error))
        span.set_status(Status(StatusCode.ERROR, str(error)[:200]))

    # -- metrics --------------------------------------------------------------------------------------

    def operation_failed(self, operation: Operation, code: str) -> None:
        """The operation was decided to fail (its undo follows): counted once, by the error that failed it."""
        self._failed.add(
            1,
            {
                names.ENVIRONMENT: operation.environment_id,
                names.NAMESPACE: operation.namespace,
                names.OPERATION_KIND: operation.kind,
                names.ERROR_CODE: code,
            },
        )

    def operation_ended(self, operation: Operation) -> None:
        """The operation's final status was saved: a finished backup's duration and size, a finished restore's
        duration, a drill's measured restore time (passed or failed)."""
        if operation.finished_on is None:
            return
        where = {names.ENVIRONMENT: operation.environment_id, names.NAMESPACE: operation.namespace}
        seconds = max((operation.finished_on - operation.created_on).total_seconds(), 0.0)
        finished = operation.status is OperationStatus.FINISHED
        if operation.kind == names.BACKUP and finished:
            made = operation.step("dump").output
            self._backup_duration.record(seconds, where)
            self._backup_size.record(int(made.get("dumpSize") or 0) + int(made.get("filesSize") or 0), where)
        elif operation.kind == names.RESTORE and finished:
            self._restore_duration.record(seconds, {**where, names.RESTORE_KIND: "restore"})
        elif operation.kind == names.DRILL and operation.status is not OperationStatus.CANCELLED:
            loaded = operation.output("load", "restoreSeconds")
            if loaded is not None:
                drill = {**where, names.RESTORE_KIND: "drill", names.OUTCOME: "passed" if finished else "failed"}
                self._restore_duration.record(float(loaded), drill)

    def storage_used(self, namespace: str, store: str, size: int) -> None:
        self._storage_used.set(size, {names.NAMESPACE: namespace, names.STORE: store})

    def observe(self, name: str, unit: str, description: str, read: Callable[[], Reading]) -> None:
        """An observable gauge: ``read`` is called at each collection (in the exporter's thread); a reading that
        fails is logged and skipped, never raised into the exporter."""

        def callback(options: CallbackOptions) -> Iterable[Observation]:
            try:
                return [Observation(value, dict(attributes)) for value, attributes in read()]
            except Exception:
                logger.warning("the gauge %s could not be read", name, exc_info=True)
                return []

        with self._lock:
            self._gauges.append(
                self._meter.create_observable_gauge(name, callbacks=[callback], unit=unit, description=description)
            )


_default: Telemetry | None = None
_default_lock = threading.Lock()


def default_telemetry() -> Telemetry:
    """One Telemetry on the global providers, for whatever is built without one (its instruments made once)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Telemetry()
        return _default
