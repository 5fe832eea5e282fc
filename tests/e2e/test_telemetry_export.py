"""The development host exporting to an OTLP collector (OTEL_EXPORTER_OTLP_ENDPOINT): a backup requested over HTTP
with the caller's traceparent arrives at a local receiver as one trace, from the request's span to the steps a
queue trigger ran, with its metrics and its log lines in that trace."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.appdata import create_scratch_app
from tests.support.apphost import start_app_host

pytestmark = pytest.mark.e2e


class _Receiver(BaseHTTPRequestHandler):
    bodies: dict[str, list[bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.bodies.setdefault(self.path, []).append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    bodies: dict[str, list[bytes]] = {}
    server = HTTPServer(("127.0.0.1", 0), type("Receiver", (_Receiver,), {"bodies": bodies}))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", bodies
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_development_host_exports_a_backup_as_one_trace_to_an_otlp_collector(
    private_stack, receiver, database_factory, postgres_admin_dsn, tmp_path
):
    services, connection_string, _ = private_stack
    endpoint, bodies = receiver
    app = create_scratch_app(services, database_factory(), postgres_admin_dsn, documents=2)
    host = start_app_host(
        connection_string, tmp_path / "devhost.log", extra_settings={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    )
    caller_trace = uuid.uuid4().hex
    try:
        answer = requests.post(
            f"{host.api}/environments/{app.environment_id}/backups",
            json={"comment": "exported"},
            headers={"traceparent": f"00-{caller_trace}-{uuid.uuid4().hex[:16]}-01"},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        backup_id = answer.json()["id"]
        deadline = time.monotonic() + 60
        while services.backup_catalog.get(app.environment_id, backup_id).status.value == "Processing":
            assert time.monotonic() < deadline, host.log()
            time.sleep(0.2)
    finally:
        host.stop()  # the exporters send what they hold as the host exits
    assert services.backup_catalog.get(app.environment_id, backup_id).status.value == "Finished"

    spans = {}
    for body in bodies.get("/v1/traces", []):
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    spans.setdefault(span.name, []).append(span)
    traced = {name for name, found in spans.items() if any(span.trace_id.hex() == caller_trace for span in found)}
    assert {
        "POST /api/environments/{env}/backups",
        "backup launch",
        "backup operation",
        "backup step dump",
        "backup step finish",
    } <= traced, sorted(spans)

    metrics = {
        metric.name
        for body in bodies.get("/v1/metrics", [])
        for resource in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert {"appbackups.backup.duration", "appbackups.backup.size"} <= metrics

    lines = [
        (record.body.string_value, record.trace_id.hex())
        for body in bodies.get("/v1/logs", [])
        for resource in ExportLogsServiceRequest.FromString(body).resource_logs
        for scope in resource.scope_logs
        for record in scope.log_records
    ]
    finished = [trace for text, trace in lines if text.startswith(f"backup {backup_id} of ") and "finished" in text]
    assert finished == [caller_trace], lines
    # The host's own log line names the span too.
    [logged] = [line for line in host.log().splitlines() if f"backup {backup_id} of " in line and "finished" in line]
    assert logged.endswith("]")
    assert f"[trace {caller_trace} span " in logged
