"""Telemetry of real work against Azurite and PostgreSQL, read with the OpenTelemetry SDK's in-memory exporters: a
backup requested over HTTP (its spans of the request's trace, their attributes, its log lines naming their span, its
duration and size), a restore (its pre-restore backup a span of the restore's trace, its duration), a backup that
fails (its failed step, the failure counted by code), the queues' gauges and the storage a namespace uses."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from shared.adapters.queuestats import AzureQueueStats
from shared.bootstrap import install_services
from shared.clock import utc_now
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus
from shared.domain.operations import OperationStatus
from shared.logs import TraceContextFilter
from shared.telemetry import Telemetry, names
from shared.telemetry.gauges import QueueGauges
from tests.support.appdata import create_scratch_app, source_and_target
from tests.support.functions import call
from tests.support.restoring import Harness

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")
CALLER_TRACE = uuid.uuid4().hex
CALLER_SPAN = uuid.uuid4().hex[:16]


@dataclass
class Recorded:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    telemetry: Telemetry

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.name == name]

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        return [
            point
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(TraceContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider([reader])
    yield Recorded(exporter, reader, Telemetry(tracer_provider, meter_provider))
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def harness(storage_services, storage_connection_string, recorded) -> Iterator[Harness]:
    harness = Harness(
        storage_connection_string,
        telemetry=recorded.telemetry,
        APPBACKUPS_DEVELOPMENT_MODE="true",
        APPBACKUPS_BACKUP_ATTEMPTS="1",
    )
    install_services(harness.services)
    yield harness
    install_services(None)


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    target = logging.getLogger("appbackups")
    target.addHandler(handler)
    previous = target.level
    target.setLevel(logging.INFO)
    yield handler
    target.removeHandler(handler)
    target.setLevel(previous)


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_a_backup_requested_over_http_is_one_trace_from_the_request_to_its_steps(
    harness, recorded, captured, database_factory, postgres_admin_dsn
):
    app = create_scratch_app(harness.services, database_factory(), postgres_admin_dsn, documents=4)
    status, _, body = call(
        "create_backup",
        "POST",
        f"environments/{app.environment_id}/backups",
        route={"env": app.environment_id},
        body={"comment": "traced"},
        headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
    )
    assert status == 202, body
    harness.drain()
    backup = harness.services.backup_catalog.get(app.environment_id, body["id"])
    assert backup.status is BackupStatus.FINISHED, backup.status_message

    [request] = recorded.named("POST /api/environments/{env}/backups")
    assert request.kind is SpanKind.SERVER
    assert format(request.context.trace_id, "032x") == CALLER_TRACE  # the caller's trace goes on
    assert parent_id(request) == int(CALLER_SPAN, 16)
    assert request.attributes["http.response.status_code"] == 202
    [launch] = recorded.named("backup launch")
    assert parent_id(launch) == span_id(request)
    [run] = recorded.named("backup operation")  # one worker ran both steps
    assert run.kind is SpanKind.CONSUMER
    assert parent_id(run) == span_id(launch)
    dump, finish = recorded.named("backup step dump"), recorded.named("backup step finish")
    assert [parent_id(step) for step in (*dump, *finish)] == [span_id(run), span_id(run)]
    every = [request, launch, run, *dump, *finish]
    assert {span.context.trace_id for span in every} == {request.context.trace_id}

    where = {
        names.ENVIRONMENT: app.environment_id,
        names.NAMESPACE: app.namespace,
        names.OPERATION_KIND: "backup",
        names.OPERATION_ID: backup.operation_id,
    }
    assert {key: dump[0].attributes[key] for key in where} == where
    assert dump[0].attributes[names.ATTEMPT] == 1
    assert dump[0].attributes[names.FILES] == backup.file_count == 4
    assert dump[0].attributes[names.BYTES] == backup.dump_size + backup.files_size
    assert dump[0].attributes[names.STEP_STATUS] == "Finished"
    assert run.attributes[names.OPERATION_STATUS] == "Finished"
    assert run.status.status_code is StatusCode.UNSET

    # The log line of the finish step names the finish step's span.
    [line] = [record for record in captured.records if record.getMessage().startswith(f"backup {backup.id} of ")]
    assert line.otelSpanID == format(span_id(finish[0]), "016x")
    assert line.otelTraceID == CALLER_TRACE

    [duration] = recorded.points(names.BACKUP_DURATION)
    assert dict(duration.attributes) == {names.ENVIRONMENT: app.environment_id, names.NAMESPACE: app.namespace}
    assert duration.count == 1
    operation = harness.services.operations.get(backup.operation_id)  # from its request to its end
    assert duration.sum == pytest.approx((operation.finished_on - operation.created_on).total_seconds(), abs=0.01)
    [size] = recorded.points(names.BACKUP_SIZE)
    assert size.sum == backup.dump_size + backup.files_size
    assert recorded.points(names.OPERATIONS_FAILED) == []

    # Its recovery point age: since the backup finished (the gauge reads the catalog when collected).
    [age] = [
        point
        for point in recorded.points(names.RECOVERY_POINT_AGE)
        if point.attributes[names.ENVIRONMENT] == app.environment_id
    ]
    assert 0 <= age.value <= (utc_now() - backup.finished_on).total_seconds() + 1


def test_a_restore_is_one_trace_with_its_pre_restore_backup_and_gives_its_duration(
    harness, recorded, database_factory, postgres_admin_dsn
):
    services = harness.services
    source, target = source_and_target(services, database_factory, postgres_admin_dsn, documents=2)
    backup_id = harness.backup(source.environment_id, ADA)
    recorded.spans.clear()

    operation = services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    harness.drain()
    done = services.restores.get(operation.id)
    assert done.status is OperationStatus.FINISHED, done.error

    [launch] = recorded.named("restore launch")
    assert launch.parent is None  # launched outside any request: its own trace
    runs = recorded.named("restore operation")
    assert runs  # more than one when it waited for its pre-restore backup
    assert all(parent_id(run) == span_id(launch) for run in runs)
    steps = {span.attributes[names.STEP]: span for span in recorded.finished() if span.name.startswith("restore step")}
    assert set(steps) >= {"pre_restore_backup", "switch", "clean_up_files", "unlock"}
    assert steps["switch"].attributes[names.BYTES] > 0
    # The pre-restore backup is launched by the restore's first step, so it is of the restore's trace.
    [backup_launch] = recorded.named("backup launch")
    assert backup_launch.context.trace_id == launch.context.trace_id
    assert parent_id(backup_launch) in {span_id(span) for span in recorded.named("restore step pre_restore_backup")}
    assert {span.context.trace_id for span in recorded.named("backup operation")} == {launch.context.trace_id}

    [restored] = [
        point
        for point in recorded.points(names.RESTORE_DURATION)
        if point.attributes[names.ENVIRONMENT] == target.environment_id
    ]
    assert restored.attributes[names.RESTORE_KIND] == "restore"
    assert restored.count == 1
    assert restored.sum == pytest.approx((done.finished_on - done.created_on).total_seconds(), abs=0.01)
    backups = {point.attributes[names.ENVIRONMENT]: point.count for point in recorded.points(names.BACKUP_DURATION)}
    assert backups == {source.environment_id: 1, target.environment_id: 1}  # the backup, the pre-restore one


def test_a_failed_backup_shows_its_failed_step_and_is_counted_by_its_error_code(
    harness, recorded, database_factory, postgres_admin_dsn
):
    services = harness.services
    app = create_scratch_app(services, database_factory(), postgres_admin_dsn, documents=1)
    app.container.delete_container()  # the file documents' container is gone: the backup cannot be made

    backup = services.backups.request(app.environment_id, ADA)
    harness.drain()
    failed = services.backup_catalog.get(app.environment_id, backup.id)
    assert failed.status is BackupStatus.FAILED

    [dump] = recorded.named("backup step dump")
    assert dump.status.status_code is StatusCode.ERROR
    assert dump.attributes[names.STEP_STATUS] == "Failed"
    assert dump.attributes[names.ERROR_CODE] == "missing_file_document"
    [exception] = [event for event in dump.events if event.name == "exception"]
    assert exception.attributes["exception.type"].endswith(".MissingFileDocument")
    [undo] = recorded.named("backup step undo")
    assert undo.attributes[names.STEP_STATUS] == "Finished"
    [run] = recorded.named("backup operation")
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes[names.OPERATION_STATUS] == "Failed"

    [counted] = recorded.points(names.OPERATIONS_FAILED)
    assert counted.value == 1
    assert dict(counted.attributes) == {
        names.ENVIRONMENT: app.environment_id,
        names.NAMESPACE: app.namespace,
        names.OPERATION_KIND: "backup",
        names.ERROR_CODE: "missing_file_document",
    }
    assert recorded.points(names.BACKUP_DURATION) == []


def test_the_queue_gauges_read_depth_and_oldest_message_and_an_absent_queue_is_empty(harness, recorded):
    clients = harness.services.clients
    name = f"telemetry-{uuid.uuid4().hex[:12]}"
    clients.queue_service.create_queue(name)
    try:
        clients.queue(name).send_message(b"first")
        clients.queue(name).send_message(b"later", visibility_timeout=600)  # counted, not waiting to be taken
        gauges = QueueGauges(
            {
                name: AzureQueueStats(clients.queue(name)),
                f"{name}-poison": AzureQueueStats(clients.queue(f"{name}-poison")),
            },
            utc_now,
        )
        recorded.telemetry.observe(names.QUEUE_DEPTH, "{message}", "depth", gauges.depths)
        recorded.telemetry.observe(names.QUEUE_OLDEST_MESSAGE_AGE, "s", "age", gauges.oldest_message_ages)
        depths = {point.attributes[names.QUEUE]: point.value for point in recorded.points(names.QUEUE_DEPTH)}
        assert depths == {name: 2, f"{name}-poison": 0}
        [oldest] = recorded.points(names.QUEUE_OLDEST_MESSAGE_AGE)
        assert oldest.attributes[names.QUEUE] == name
        assert 0 <= oldest.value < 60
    finally:
        clients.queue_service.delete_queue(name)


def test_storage_used_is_measured_per_namespace_and_store(harness, recorded, database_factory, postgres_admin_dsn):
    services = harness.services
    app = create_scratch_app(services, database_factory(), postgres_admin_dsn, documents=3)
    backup = services.backup_catalog.get(app.environment_id, harness.backup(app.environment_id, ADA))

    used = services.storage_usage.measure()
    backups, content = used[app.namespace, "backups"], used[app.namespace, "content"]
    assert backups > 0  # its manifest, file list, row counts and dump (or the index of its chunks)
    assert content >= backup.files_size > 0
    points = {
        point.attributes[names.STORE]: point.value
        for point in recorded.points(names.STORAGE_USED)
        if point.attributes[names.NAMESPACE] == app.namespace
    }
    assert points == {"backups": backups, "content": content}
