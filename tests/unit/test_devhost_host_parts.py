"""Smaller parts of the development host: loader, invoker, timer runner, queue connections, responses."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest

from devhost.hostconfig import QueueOptions
from devhost.http_app import problem, to_http_response
from devhost.invoker import Invoker
from devhost.loader import FunctionInfo, load_app
from devhost.manual import NotManuallyRunnable, manual_trigger_value
from devhost.queues import ConnectionInfo, QueuePoller, decode_content, encode_body, resolve_connection
from devhost.timers import TimerRunner

APP_SOURCE = textwrap.dedent(
    """
    import azure.functions as func

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    bp = func.Blueprint()

    @app.route(route="items/{id:int}", methods=["GET", "POST"])
    def get_item(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(req.route_params["id"])

    @app.route()
    def default_route(req: func.HttpRequest) -> str:
        return "ok"

    @app.function_name("Renamed")
    @app.timer_trigger(arg_name="mytimer", schedule="0 */5 * * * *", run_on_startup=True)
    def tick(mytimer: func.TimerRequest) -> None:
        pass

    @bp.queue_trigger(arg_name="message", queue_name="jobs", connection="Storage")
    def work(message: func.QueueMessage) -> None:
        pass

    app.register_functions(bp)
    """
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "my_app.py").write_text(APP_SOURCE)
    return tmp_path


def test_loader_reads_trigger_metadata_from_the_registered_functions(app_dir: Path) -> None:
    loaded = load_app(app_dir, "my_app:app")
    try:
        by_name = {function.name: function for function in loaded.functions}
        assert set(by_name) == {"get_item", "default_route", "Renamed", "work"}
        item = by_name["get_item"]
        assert (item.trigger_type, item.arg_name, item.route, item.methods) == (
            "httpTrigger",
            "req",
            "items/{id:int}",
            ["GET", "POST"],
        )
        assert item.auth_level == "anonymous"
        assert by_name["default_route"].route == "default_route"
        assert by_name["default_route"].methods is None
        timer = by_name["Renamed"]
        assert (timer.trigger_type, timer.arg_name, timer.schedule, timer.run_on_startup) == (
            "timerTrigger",
            "mytimer",
            "0 */5 * * * *",
            True,
        )
        queue = by_name["work"]
        assert (queue.trigger_type, queue.arg_name, queue.queue_name, queue.connection) == (
            "queueTrigger",
            "message",
            "jobs",
            "Storage",
        )
        assert loaded.find("renamed") is timer  # names are case-insensitive
    finally:
        loaded.unload()


def test_unload_leaves_no_trace_and_same_named_modules_do_not_shadow_each_other(tmp_path: Path, app_dir: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "my_app.py").write_text(APP_SOURCE.replace('route="items/{id:int}"', 'route="other/{id:int}"'))
    first = load_app(app_dir, "my_app:app")
    second = load_app(other, "my_app:app")
    try:
        assert first.find("get_item").route == "items/{id:int}"
        assert second.find("get_item").route == "other/{id:int}"
        assert sys.modules["my_app"] is first.module
    finally:
        second.unload()
        first.unload()
    assert "my_app" not in sys.modules
    assert str(app_dir.resolve()) not in sys.path


def test_loader_errors_are_clear(app_dir: Path) -> None:
    with pytest.raises(ValueError, match="has no attribute 'missing'"):
        load_app(app_dir, "my_app:missing")
    assert "my_app" not in sys.modules
    with pytest.raises(ValueError, match="MODULE:ATTRIBUTE"):
        load_app(app_dir, "my_app")


# -- invoker


def function_info(func_: Any, trigger: dict[str, Any], *extra: dict[str, Any]) -> FunctionInfo:
    return FunctionInfo(func_.__name__, trigger, (trigger, *extra), func_)


def test_invoker_passes_the_trigger_by_binding_name_and_logs_the_outcome(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: dict[str, Any] = {}

    def handler(my_request: func.HttpRequest, context: func.Context) -> str:
        seen["request"] = my_request
        seen["context"] = context
        return "fine"

    info = function_info(handler, {"type": "httpTrigger", "name": "my_request"})
    request = func.HttpRequest("GET", "http://x/api/y", body=b"")
    with caplog.at_level(logging.INFO, logger="devhost"):
        result = Invoker(tmp_path).invoke(info, request)
    assert result.succeeded
    assert result.value == "fine"
    assert seen["request"] is request
    assert seen["context"].function_name == "handler"
    assert seen["context"].invocation_id == result.invocation_id
    assert "Executed 'Functions.handler' (Succeeded, Trigger=httpTrigger" in caplog.text


def test_invoker_runs_async_functions_and_reports_failures(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def failing(msg: Any) -> None:
        raise KeyError("nope")

    info = function_info(failing, {"type": "queueTrigger", "name": "msg"})
    with caplog.at_level(logging.INFO, logger="devhost"):
        result = Invoker(tmp_path).invoke(info, object(), details=", DequeueCount=3")
    assert not result.succeeded
    assert isinstance(result.error, KeyError)
    assert "Executed 'Functions.failing' (Failed, KeyError, Trigger=queueTrigger" in caplog.text
    assert "DequeueCount=3)" in caplog.text


def test_invoker_warns_when_an_invocation_exceeds_the_function_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import time

    def slow(timer: Any) -> None:
        time.sleep(0.3)

    info = function_info(slow, {"type": "timerTrigger", "name": "timer"})
    with caplog.at_level(logging.WARNING, logger="devhost"):
        assert Invoker(tmp_path, function_timeout=0.05).invoke(info, object()).succeeded
    assert "running longer than functionTimeout" in caplog.text


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, list[bytes]]] = []

    def send(self, connection: str, queue_name: str, bodies: list[bytes]) -> None:
        self.sent.append((connection, queue_name, bodies))


def test_queue_output_bindings_are_sent_after_success(tmp_path: Path) -> None:
    def producer(req: Any, out: func.Out[str]) -> str:
        out.set(["one", "two"])
        return "returned"

    info = function_info(
        producer,
        {"type": "httpTrigger", "name": "req"},
        {"type": "queue", "name": "out", "queueName": "outbox", "connection": "Storage"},
        {"type": "queue", "name": "$return", "queueName": "results", "connection": ""},
    )
    sender = RecordingSender()
    assert Invoker(tmp_path, queue_sender=sender).invoke(info, object()).succeeded
    assert sender.sent == [
        ("Storage", "outbox", [b"one", b"two"]),
        ("AzureWebJobsStorage", "results", [b"returned"]),
    ]


def test_manual_trigger_values() -> None:
    timer = function_info(lambda t: None, {"type": "timerTrigger", "name": "t"})
    queue = function_info(lambda m: None, {"type": "queueTrigger", "name": "m"})
    http = function_info(lambda r: None, {"type": "httpTrigger", "name": "r"})
    assert manual_trigger_value(timer, "ignored").past_due is False
    message = manual_trigger_value(queue, "payload")
    assert (message.get_body(), message.dequeue_count) == (b"payload", 1)
    with pytest.raises(NotManuallyRunnable, match="call HTTP functions through their route"):
        manual_trigger_value(http, None)


# -- timers with a fake clock


class FakeTime:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def clock(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class RecordingInvoker:
    def __init__(self, time: FakeTime, duration: float = 0.0, stop_after: int = 3) -> None:
        self.time = time
        self.duration = duration
        self.stop_after = stop_after
        self.calls: list[tuple[dt.datetime, bool]] = []
        self.runner: TimerRunner | None = None

    def invoke(self, function: FunctionInfo, trigger_value: Any, *, details: str = "") -> None:
        self.calls.append((self.time.now, trigger_value.past_due))
        self.time.advance(self.duration)
        if len(self.calls) >= self.stop_after and self.runner is not None:
            self.runner.stop()


def run_timer(schedule: str, start: str, *, duration: float = 0.0, count: int = 3, **options: Any) -> list[Any]:
    fake = FakeTime(dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC))
    invoker = RecordingInvoker(fake, duration, count)
    info = function_info(lambda timer: None, {"type": "timerTrigger", "name": "timer", "schedule": schedule})

    def wait(seconds: float) -> bool:
        fake.advance(seconds)
        return False

    runner = TimerRunner(info, invoker, clock=fake.clock, wait=wait, **options)
    invoker.runner = runner
    runner.run()
    return [(moment.strftime("%H:%M:%S"), past_due) for moment, past_due in invoker.calls]


def test_timer_runs_at_each_occurrence_on_time() -> None:
    assert run_timer("0 */5 * * * *", "2024-05-01T10:03:20") == [
        ("10:05:00", False),
        ("10:10:00", False),
        ("10:15:00", False),
    ]


def test_timer_run_on_startup_runs_first() -> None:
    assert run_timer("0 0 * * * *", "2024-05-01T10:03:20", run_on_startup=True) == [
        ("10:03:20", False),
        ("11:00:00", False),
        ("12:00:00", False),
    ]


def test_an_overrunning_timer_gets_one_past_due_run_then_resumes() -> None:
    # each run takes 130 s on a one-minute schedule: the first missed occurrence runs at once (past due),
    # the rest are skipped and the schedule resumes from the current time
    assert run_timer("0 * * * * *", "2024-05-01T10:00:30", duration=130, count=4) == [
        ("10:01:00", False),
        ("10:03:10", True),
        ("10:06:00", False),
        ("10:08:10", True),
    ]


def test_timespan_schedule_fires_every_interval() -> None:
    assert run_timer("00:00:30", "2024-05-01T10:00:00") == [
        ("10:00:30", False),
        ("10:01:00", False),
        ("10:01:30", False),
    ]


def test_timer_with_invalid_schedule_fails_at_construction() -> None:
    info = function_info(lambda timer: None, {"type": "timerTrigger", "name": "timer", "schedule": "* * * * *"})
    with pytest.raises(ValueError, match="six NCRONTAB fields"):
        TimerRunner(info, RecordingInvoker(FakeTime(dt.datetime.now(dt.UTC))))


# -- queue connections and encoding


def test_connection_string_setting() -> None:
    info = resolve_connection("Storage", {"Storage": "UseDevelopmentStorage=true"})
    assert info == ConnectionInfo(setting="Storage", connection_string="UseDevelopmentStorage=true")


def test_connection_falls_back_to_azurewebjobs_prefix_and_default_name() -> None:
    assert resolve_connection("Storage", {"AzureWebJobsStorage": "cs"}).setting == "AzureWebJobsStorage"
    assert resolve_connection("", {"AzureWebJobsStorage": "cs"}).connection_string == "cs"


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        ({"Storage__queueServiceUri": "https://acct.queue.core.windows.net/"}, "https://acct.queue.core.windows.net"),
        ({"Storage__serviceUri": "https://other.example"}, "https://other.example"),
        ({"Storage__accountName": "acct"}, "https://acct.queue.core.windows.net"),
    ],
)
def test_identity_based_connections(environ: dict[str, str], url: str) -> None:
    info = resolve_connection(
        "Storage", {**environ, "Storage__clientId": "1234", "Storage__credential": "managedidentity"}
    )
    assert (info.account_url, info.client_id, info.credential_kind, info.connection_string) == (
        url,
        "1234",
        "managedidentity",
        None,
    )


def test_missing_connection_explains_what_to_set() -> None:
    with pytest.raises(ValueError, match="set Storage to a connection string, or Storage__queueServiceUri"):
        resolve_connection("Storage", {})


def test_message_encoding_round_trip() -> None:
    assert encode_body(b"hello", "base64") == "aGVsbG8="
    assert decode_content("aGVsbG8=", "base64") == b"hello"
    assert encode_body("hé".encode(), "none") == "hé"
    assert decode_content("hé", "none") == "hé".encode()
    with pytest.raises(ValueError, match="not valid base64"):
        decode_content("not base64!", "base64")


# -- HTTP responses


def test_http_response_conversion() -> None:
    status, headers, body = to_http_response(
        func.HttpResponse("{}", status_code=201, mimetype="application/json", headers={"X-A": "1"})
    )
    assert status == 201
    assert ("Content-Type", "application/json; charset=utf-8") in headers
    assert ("X-A", "1") in headers
    assert body == b"{}"
    _, headers, _ = to_http_response(func.HttpResponse("x", headers={"content-type": "text/csv"}))
    assert [value for name, value in headers if name.lower() == "content-type"] == ["text/csv"]
    assert to_http_response("text") == (200, [("Content-Type", "text/plain; charset=utf-8")], b"text")
    assert to_http_response(None) == (204, [], b"")
    with pytest.raises(TypeError):
        to_http_response(42)


def test_problem_document() -> None:
    assert problem(404, "nothing here", "route_not_found") == (
        b'{"type": "about:blank", "title": "Not Found", "status": 404, "detail": "nothing here", '
        b'"code": "route_not_found"}'
    )


# -- queue poller back-off, with fake storage at the QueueConnections seam


class FakePage:
    def __init__(self, messages: list[Any]) -> None:
        self.messages = messages

    def by_page(self) -> Iterator[list[Any]]:
        return iter([self.messages] if self.messages else [])


class ScriptedQueue:
    """Answers receive_messages from a script: a list of messages, or an exception to raise."""

    def __init__(self, script: list[Any], when_done: Callable[[], None]) -> None:
        self.script = script
        self.when_done = when_done
        self.deleted: list[str] = []

    def receive_messages(self, **options: Any) -> FakePage:
        if not self.script:
            self.when_done()
            return FakePage([])
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return FakePage(step)

    def delete_message(self, message_id: str, pop_receipt: str) -> None:
        self.deleted.append(message_id)

    def update_message(self, message_id: str, pop_receipt: str, **options: Any) -> Any:
        return SimpleNamespace(pop_receipt=pop_receipt)


class FakeConnections:
    def __init__(self, queue: ScriptedQueue) -> None:
        self.queue = queue

    def ensure(self, setting: str, queue_name: str) -> ScriptedQueue:
        return self.queue


class SucceedingInvoker:
    def invoke(self, function: FunctionInfo, trigger_value: Any, *, details: str = "") -> Any:
        return SimpleNamespace(succeeded=True)


def test_empty_polls_back_off_exponentially_and_a_message_or_recovery_resets_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    message = SimpleNamespace(
        id="m1",
        content="b2s=",
        dequeue_count=1,
        pop_receipt="p1",
        inserted_on=None,
        expires_on=None,
        next_visible_on=None,
    )
    outage = OSError("connection refused")
    script: list[Any] = [[], [], [], [], [message], [], [], outage, outage, outage, []]
    waits: list[float] = []
    info = function_info(lambda msg: None, {"type": "queueTrigger", "name": "msg", "queueName": "jobs"})
    options = QueueOptions(max_polling_interval=0.4, batch_size=4, new_batch_threshold=2)
    holder: dict[str, QueuePoller] = {}
    queue = ScriptedQueue(script, lambda: holder["poller"].stop())

    def wait(seconds: float) -> bool:
        waits.append(round(seconds, 3))
        return False

    poller = QueuePoller(info, FakeConnections(queue), options, SucceedingInvoker(), wait=wait)  # type: ignore[arg-type]
    holder["poller"] = poller
    with caplog.at_level(logging.INFO, logger="devhost"):
        poller._poll_loop()
    # empty: 0.1, 0.2, 0.4, 0.4 (capped); message: no wait; empty: 0.1, 0.2;
    # storage errors back off to max(maxPollingInterval, 2 s): 0.4, 0.8, 1.6; recovered and empty: 0.1
    assert waits[:10] == [0.1, 0.2, 0.4, 0.4, 0.1, 0.2, 0.4, 0.8, 1.6, 0.1]
    assert caplog.text.count("storage error, retrying") == 3
    assert "storage reachable again" in caplog.text
