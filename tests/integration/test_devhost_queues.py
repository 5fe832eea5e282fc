"""Queue triggers through a running DevHost against the session's Azurite (tests/support/devhost_app)."""

from __future__ import annotations

import base64
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient

from devhost import DevHost
from tests.support.devhost_fixture import make_app_dir, read_records
from tests.support.polling import wait_for
from tools import azurite as azurite_launcher

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CONNECTION_SETTING = "DevhostFixtureStorage"  # the fixture's queue trigger connection


class QueueScenario:
    """One test's queue (unique name), its poison queue, record file and running host."""

    def __init__(self, app_dir: Path, records: Path, queue_name: str, connection_string: str) -> None:
        self.app_dir = app_dir
        self.records = records
        self.queue_name = queue_name
        self.queue = QueueClient.from_connection_string(connection_string, queue_name)
        self.poison = QueueClient.from_connection_string(connection_string, f"{queue_name}-poison")
        self.host: DevHost | None = None

    def start(self, **options: object) -> DevHost:
        self.host = DevHost(self.app_dir, port=0, timers=False, **options).start()  # type: ignore[arg-type]
        return self.host

    def send(self, body: str) -> None:
        """Send as the host expects with messageEncoding base64, once the queue exists (the host's poller
        creates it in its own thread, after ``start`` has returned)."""
        wait_for(_exists(self.queue), timeout=10)
        self.queue.send_message(base64.b64encode(body.encode()).decode())

    def invocations(self, body: str | None = None) -> list[dict[str, object]]:
        return [e for e in read_records(self.records) if e["fn"] == "work" and (body is None or e["body"] == body)]

    def queue_length(self, client: QueueClient) -> int:
        try:
            return int(client.get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0

    def poison_bodies(self) -> list[str]:
        try:
            messages = self.poison.peek_messages(max_messages=32)
        except ResourceNotFoundError:
            return []
        return [base64.b64decode(message.content).decode() for message in messages]


@pytest.fixture
def scenario(
    tmp_path: Path, storage_connection_string: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[QueueScenario]:
    queue_name = f"devhost-{uuid.uuid4().hex[:12]}"
    records = tmp_path / "records.jsonl"
    monkeypatch.setenv(CONNECTION_SETTING, storage_connection_string)
    monkeypatch.setenv("DEVHOST_FIXTURE_QUEUE", queue_name)
    monkeypatch.setenv("DEVHOST_FIXTURE_RECORD", str(records))
    result = QueueScenario(make_app_dir(tmp_path / "app"), records, queue_name, storage_connection_string)
    try:
        yield result
    finally:
        if result.host is not None:
            result.host.stop(timeout=10)
        for client in (result.queue, result.poison):
            with contextlib.suppress(ResourceNotFoundError):
                client.delete_queue()


def test_a_succeeding_message_is_delivered_once_and_deleted(
    scenario: QueueScenario, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="devhost"):
        scenario.start()  # its poller creates the queue
        scenario.send("ok")
        [entry] = wait_for(lambda: scenario.invocations("ok"), timeout=10)
        assert entry["dequeue_count"] == 1
        wait_for(lambda: scenario.queue_length(scenario.queue) == 0, timeout=10)
    # The count includes invisible messages: none is left that could be delivered again.
    assert len(scenario.invocations("ok")) == 1
    assert scenario.poison_bodies() == []
    assert "Executed 'Functions.work' (Succeeded, Trigger=queueTrigger" in caplog.text
    assert "DequeueCount=1)" in caplog.text


def test_a_failing_message_is_retried_after_the_visibility_timeout_then_poisoned(
    scenario: QueueScenario, caplog: pytest.LogCaptureFixture
) -> None:
    # host.json: maxDequeueCount 2, visibilityTimeout 00:00:01
    with caplog.at_level(logging.INFO, logger="devhost"):
        scenario.start()
        scenario.send("fail")
        wait_for(lambda: scenario.poison_bodies() == ["fail"], timeout=15)
    attempts = scenario.invocations("fail")
    assert [entry["dequeue_count"] for entry in attempts] == [1, 2]
    delay = float(attempts[1]["at"]) - float(attempts[0]["at"])  # type: ignore[arg-type]
    assert delay >= 0.9, f"retried after {delay:.2f}s, before the 1 s visibilityTimeout"
    assert scenario.queue_length(scenario.queue) == 0  # moved, not left invisible: it cannot come back
    assert len(scenario.invocations("fail")) == 2
    assert "Executed 'Functions.work' (Failed, ValueError, Trigger=queueTrigger" in caplog.text
    assert "DequeueCount=2)" in caplog.text


def test_a_message_that_fails_once_succeeds_on_retry(scenario: QueueScenario) -> None:
    scenario.start()
    scenario.send("fail-once")
    wait_for(lambda: len(scenario.invocations("fail-once")) == 2, timeout=10)
    wait_for(lambda: scenario.queue_length(scenario.queue) == 0, timeout=10)
    assert [entry["dequeue_count"] for entry in scenario.invocations("fail-once")] == [1, 2]
    assert scenario.poison_bodies() == []


def test_the_lease_is_renewed_while_a_long_invocation_runs(scenario: QueueScenario) -> None:
    scenario.start(queue_lease_seconds=1)
    scenario.send("sleep:3")
    wait_for(lambda: scenario.invocations("sleep:3"), timeout=10)
    wait_for(lambda: scenario.queue_length(scenario.queue) == 0, timeout=10)
    # Without renewal the message would reappear after 1 s and be delivered again.
    assert [entry["dequeue_count"] for entry in scenario.invocations("sleep:3")] == [1]


def test_a_message_dequeued_too_often_goes_to_poison_without_running(scenario: QueueScenario) -> None:
    scenario.queue.create_queue()
    scenario.send("ok")
    for _ in range(2):  # two receives whose workers "crashed": dequeue count 2 = maxDequeueCount
        [message] = scenario.queue.receive_messages(visibility_timeout=30, max_messages=1)
        scenario.queue.update_message(message.id, message.pop_receipt, visibility_timeout=0)
    scenario.start()  # its receive makes the count 3 > maxDequeueCount
    wait_for(lambda: scenario.poison_bodies() == ["ok"], timeout=10)
    assert scenario.invocations() == []
    assert scenario.queue_length(scenario.queue) == 0


def test_a_message_that_is_not_base64_goes_to_poison_without_running(scenario: QueueScenario) -> None:
    scenario.queue.create_queue()
    scenario.queue.send_message("plain text, not base64!")
    scenario.start()
    wait_for(lambda: scenario.queue_length(scenario.poison) == 1, timeout=10)
    [message] = scenario.poison.peek_messages()
    assert message.content == "plain text, not base64!"  # moved unchanged
    assert scenario.invocations() == []


def test_storage_errors_are_logged_and_retried(
    scenario: QueueScenario,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue_port = azurite_launcher.free_port()
    dead = azurite_launcher.connection_string(queue_port, queue_port, queue_port)  # nothing listens there yet
    monkeypatch.setenv(CONNECTION_SETTING, dead)
    late_azurite: azurite_launcher.Azurite | None = None
    with caplog.at_level(logging.INFO, logger="devhost"):
        try:
            scenario.start()
            wait_for(lambda: "storage error, retrying" in caplog.text, timeout=10)
            late_azurite = azurite_launcher.start(tmp_path / "late-azurite", queue_port=queue_port)
            late_queue = QueueClient.from_connection_string(late_azurite.connection_string, scenario.queue_name)
            wait_for(_exists(late_queue), timeout=15)  # the poller created it once storage was reachable
            late_queue.send_message(base64.b64encode(b"ok").decode())
            wait_for(lambda: scenario.invocations("ok"), timeout=10)
        finally:
            if scenario.host is not None:
                scenario.host.stop(timeout=10)
                scenario.host = None
            if late_azurite is not None:
                late_azurite.stop()
    assert "storage reachable again" in caplog.text


def _exists(client: QueueClient) -> Callable[[], bool]:
    def check() -> bool:
        try:
            client.get_queue_properties()
        except ResourceNotFoundError:
            return False
        return True

    return check
