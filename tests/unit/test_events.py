"""Events on the in-memory twins: what each end of a job says (type, subject, data, a stable id), the
CloudEvents encoding, the fan-out to the Event Grid fake and to webhooks, signatures checked with the
Standard Webhooks library, retries with back-off until given up, the address checks before each
delivery, schedule.missed once per missed window and backup.expired per forgotten backup."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.messaging import CloudEvent as AzureCloudEvent
from cloudevents.core.formats.json import JSONFormat
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared.adapters.cloudevents import decode, encode
from shared.adapters.eventgrid import AzureEventGridSink, MemoryEventGrid
from shared.adapters.webhooks import MemoryTransport
from shared.catalog.events import delivery_key
from shared.config import Queues
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import Principal
from shared.domain.backups import Actor, BackupStatus
from shared.domain.environments import EnvironmentState
from shared.domain.events import EVENT_GRID_TARGET, DeliveryStatus, EventType, event_id
from shared.domain.operations import Operation, OperationStatus, Step, StepStatus
from shared.domain.verification import Check, CheckStatus, Verification, VerificationStatus
from shared.events.outcomes import operation_event
from tests.support.memory import HOSTS, ManualClock, memory_services

ADA = Principal("ada-oid", "Ada")
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + "B" * 32


def registration(namespace: str = "ns", state: str = "Running") -> EnvironmentBody:
    return EnvironmentBody.model_validate(
        {
            "namespace": namespace,
            "appName": "app",
            "displayName": "Production",
            "state": state,
            "database": {"host": "h", "database": "d", "user": "u"},
            "files": {"container": "files"},
        }
    )


class World:
    def __init__(self, *, event_grid: bool = False, development_mode: bool = False) -> None:
        self.clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        self.grid = MemoryEventGrid() if event_grid else None
        self.transport = MemoryTransport()
        self.services = memory_services(
            self.clock,  # type: ignore[arg-type]
            event_grid=self.grid,
            webhook_transport=self.transport,
            development_mode=development_mode,
            webhook_retry_seconds=(5, 60, 600),
        )
        self.services.environments.put("prod", registration().to_registration(), ADA)

    def queue(self, name: str):  # type: ignore[no-untyped-def]
        return self.services.events._outbox if name == Queues.EVENTS else self.services.deliveries._queue

    def hook(self, webhook_id: str = "ops", events: tuple[str, ...] = ("*",), url: str = "") -> None:
        self.services.webhooks.put(
            "ns",
            webhook_id,
            url=url or "https://hooks.example.com/appbackups",
            events=events,
            secret=SECRET,
            description="",
            caller=ADA,
        )

    def published(self) -> list[str]:
        """Take the outbox's messages (what jobs published), as CloudEvents documents."""
        outbox = self.queue(Queues.EVENTS)
        documents = [message["event"] for message in outbox.messages]
        outbox.clear()
        return documents

    def run_deliveries(self, limit: int = 50) -> int:
        """Deliver every queued delivery message, moving the clock to each one's visibility."""
        queue = self.queue(Queues.DELIVERIES)
        count = 0
        start = self.clock.now
        while queue.sent and count < limit:
            message = min(queue.sent, key=lambda sent: sent.delay_seconds)
            queue.sent.remove(message)
            self.clock.now = max(self.clock.now, start + timedelta(seconds=message.delay_seconds))
            start = self.clock.now
            self.services.deliveries.deliver(message.body["target"], message.body["key"])
            count += 1
        return count


def operation(kind: str, status: OperationStatus, **changes: object) -> Operation:
    now = datetime(2026, 10, 22, 2, 0, tzinfo=UTC)
    base = Operation(
        id=f"{kind}-op-1",
        kind=kind,
        status=status,
        environment_id="prod",
        namespace="ns",
        created_on=now,
        updated_on=now + timedelta(minutes=3),
        finished_on=now + timedelta(minutes=3),
        created_by=Actor("ada-oid", "Ada"),
        steps=(Step("one", "One", status=StepStatus.FINISHED),),
        backup_id="snap-1",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# -- what each end of a job says -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "expected", "subject"),
    [
        ("backup", OperationStatus.FINISHED, EventType.BACKUP_FINISHED, "backups/snap-1"),
        ("backup", OperationStatus.FAILED, EventType.BACKUP_FAILED, "backups/snap-1"),
        ("backup", OperationStatus.CANCELLED, EventType.BACKUP_CANCELLED, "backups/snap-1"),
        ("restore", OperationStatus.FINISHED, EventType.RESTORE_FINISHED, "restores/restore-op-1"),
        ("restore", OperationStatus.FAILED, EventType.RESTORE_FAILED, "restores/restore-op-1"),
        ("restore", OperationStatus.CANCELLED, EventType.RESTORE_CANCELLED, "restores/restore-op-1"),
        ("download", OperationStatus.FINISHED, EventType.DOWNLOAD_READY, "backups/snap-1/downloads/download-op-1"),
        ("download", OperationStatus.FAILED, EventType.DOWNLOAD_FAILED, "backups/snap-1/downloads/download-op-1"),
        ("upload", OperationStatus.FINISHED, EventType.UPLOAD_FINISHED, "uploads/up-1"),
        ("upload", OperationStatus.FAILED, EventType.UPLOAD_FAILED, "uploads/up-1"),
    ],
)
def test_every_end_of_a_job_is_an_event_with_an_id_derived_from_it(kind, status, expected, subject) -> None:
    ended = operation(kind, status, parameters={"uploadId": "up-1", "sourceEnvironmentId": "acc"}, error="boom")
    event = operation_event(ended, lambda environment, backup: None)
    assert event is not None
    assert (event.type, event.subject, event.source) == (expected, subject, "/namespaces/ns/environments/prod")
    assert event.id == event_id(f"{kind}-op-1/{expected.value}")
    assert event.id == operation_event(ended, lambda environment, backup: None).id  # type: ignore[union-attr]
    assert event.time == ended.finished_on
    assert event.data["environmentId"] == "prod"
    assert event.data["durationSeconds"] == 180.0
    assert event.data["reason"] == "boom"
    assert event.data["createdBy"] == {"id": "ada-oid", "name": "Ada"}
    assert operation_event(replace(ended, status=OperationStatus.RUNNING), lambda e, s: None) is None


def test_a_backup_event_carries_what_the_api_shows_of_the_backup() -> None:
    world = World()
    services = world.services
    backup = services.backups.record("prod", ADA, comment="before release")
    finished = services.backup_catalog.save(
        backup.finished(
            backup.created_on, dump_size=123, dump_sha256="0" * 64, file_count=4, files_size=99, files_copied=2
        )
    )
    ended = operation("backup", OperationStatus.FINISHED, backup_id=finished.id, environment_id="prod")
    event = operation_event(ended, services.backup_catalog.find)
    assert event is not None
    assert event.data["backupId"] == finished.id
    assert (event.data["dumpSize"], event.data["fileCount"], event.data["filesSize"]) == (123, 4, 99)
    assert event.data["status"] == BackupStatus.FINISHED.value
    assert event.data["comment"] == "before release"
    assert event.data["tier"] == "manual"


def test_a_backup_that_finished_with_file_documents_missing_is_warned() -> None:
    world = World()
    services = world.services
    backup = services.backups.record("prod", ADA)
    finished = services.backup_catalog.save(
        backup.finished(
            backup.created_on,
            dump_size=1,
            dump_sha256="0" * 64,
            file_count=1,
            files_size=1,
            files_copied=1,
            missing_files=2,
            missing_file_uuids=("a1", "b2"),
        )
    )
    ended = operation("backup", OperationStatus.FINISHED, backup_id=finished.id)
    event = operation_event(ended, services.backup_catalog.find)
    assert event is not None
    assert event.type is EventType.BACKUP_WARNED
    assert event.data["missingFiles"] == 2
    assert event.data["warnings"] == list(finished.warnings)
    assert "a1, b2" in event.data["warnings"][0]
    whole = services.backup_catalog.save(replace(finished, missing_files=0, missing_file_uuids=()))
    assert operation_event(replace(ended, backup_id=whole.id), services.backup_catalog.find).type is (  # type: ignore[union-attr]
        EventType.BACKUP_FINISHED
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (OperationStatus.FINISHED, EventType.VERIFICATION_PASSED),
        (OperationStatus.FAILED, EventType.VERIFICATION_FAILED),
    ],
)
def test_a_restore_drill_is_a_verification_event_with_its_checks(status, expected) -> None:
    world = World()
    services = world.services
    backup = services.backups.record("prod", ADA)
    drill_status = VerificationStatus.PASSED if status is OperationStatus.FINISHED else VerificationStatus.FAILED
    check_status = CheckStatus.PASSED if status is OperationStatus.FINISHED else CheckStatus.FAILED
    verified = services.backup_catalog.save(
        replace(
            backup.finished(backup.created_on, dump_size=1, dump_sha256="0" * 64, file_count=0, files_size=0),
            verification=Verification(
                drill_status,
                "verify-op-1",
                backup.created_on,
                backup.created_on,
                restore_seconds=2.5,
                checks=(Check("load", check_status, "loaded"),),
            ),
        )
    )
    ended = operation("verify", status, backup_id=verified.id)
    event = operation_event(ended, services.backup_catalog.find)
    assert event is not None
    assert (event.type, event.subject) == (expected, "drills/verify-op-1")
    assert event.data["backupId"] == verified.id
    assert event.data["restoreSeconds"] == 2.5
    assert event.data["checks"] == [{"name": "load", "status": check_status.value, "detail": "loaded"}]
    assert operation_event(replace(ended, status=OperationStatus.CANCELLED), services.backup_catalog.find) is None


def test_a_download_event_names_no_url() -> None:
    ready = operation(
        "download",
        OperationStatus.FINISHED,
        parameters={"dataType": "database_only"},
        steps=(
            Step("prepare", "Prepare", StepStatus.FINISHED, output={"fileName": "x.backup", "archiveSize": 5}),
            Step("publish", "Publish", StepStatus.FINISHED, output={"expiresOn": "2026-10-22T10:03:00+00:00"}),
        ),
    )
    event = operation_event(ready, lambda environment, backup: None)
    assert event is not None
    assert event.data["status"] == "Ready"
    assert event.data["expiresOn"] == "2026-10-22T10:03:00+00:00"
    text = encode(event)
    assert "http" not in text
    assert "sig=" not in text
    assert "url" not in text.lower()


def test_every_job_announces_its_end_through_the_publisher() -> None:
    services = World().services
    for kind in ("backup", "restore", "download", "upload"):
        assert services.operations._definitions[kind].on_ended == services.events.announce


def test_events_are_cloudevents_json_read_back_by_the_sdk() -> None:
    ended = operation("restore", OperationStatus.FAILED, error="boom", parameters={"sourceEnvironmentId": "acc"})
    event = operation_event(ended, lambda environment, backup: None)
    assert event is not None
    document = encode(event)
    read = JSONFormat().read(None, document)
    attributes = read.get_attributes()
    assert attributes["specversion"] == "1.0"
    assert attributes["type"] == "appbackups.restore.failed"
    assert attributes["id"] == event.id
    assert read.get_data()["sourceEnvironmentId"] == "acc"  # type: ignore[index]
    assert decode(document) == event
    with pytest.raises(ValueError, match=r"not\.ours"):
        decode('{"specversion": "1.0", "id": "x", "source": "/s", "type": "not.ours"}')


# -- fan-out and delivery --------------------------------------------------------------------------


def publish_backup_failure(world: World, operation_id: str = "backup-op-1") -> str:
    world.services.events.announce(operation("backup", OperationStatus.FAILED, id=operation_id, error="disk full"))
    [document] = world.published()
    return document


def test_a_webhook_gets_each_event_once_signed_per_standard_webhooks() -> None:
    world = World()
    world.hook()
    document = publish_backup_failure(world)
    assert world.services.deliveries.fan_out(document) == ["ns~ops"]
    # A resend of the same event before it went out queues it again (the first fan-out may have died
    # before it queued it); the duplicate message finds it delivered and sends nothing.
    assert world.services.deliveries.fan_out(document) == ["ns~ops"]
    assert world.run_deliveries() == 2
    [post] = world.transport.posts
    assert post.endpoint.host == "hooks.example.com"
    assert post.address == HOSTS["hooks.example.com"][0]
    assert post.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    assert post.headers["webhook-id"] == json.loads(document)["id"]
    received = StandardWebhook(SECRET).verify(post.body, post.headers)
    assert received["type"] == "appbackups.backup.failed"
    assert received["data"]["reason"] == "disk full"
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(OTHER_SECRET).verify(post.body, post.headers)
    tampered = post.body.replace(b"disk full", b"all good!")
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(SECRET).verify(tampered, post.headers)
    assert world.services.deliveries.fan_out(document) == []  # delivered: a late duplicate sends nothing
    assert world.run_deliveries() == 0
    deliveries, _ = world.services.webhooks.deliveries("ns", "ops", limit=10, continuation=None)
    assert [(d.status, [a.status_code for a in d.attempts]) for d in deliveries] == [(DeliveryStatus.DELIVERED, [200])]


def test_a_webhook_gets_only_the_events_it_asked_for() -> None:
    world = World()
    world.hook("restores", events=("appbackups.restore.*",))
    world.hook("failures", events=("appbackups.backup.failed", "appbackups.restore.failed"))
    document = publish_backup_failure(world)
    assert world.services.deliveries.fan_out(document) == ["ns~failures"]


def test_a_failing_receiver_is_tried_again_with_back_off_and_then_given_up(caplog) -> None:
    world = World()
    world.hook()
    world.transport.answers = [500, ConnectionRefusedError("refused"), 503, 502]
    started = world.clock.now
    world.services.deliveries.fan_out(publish_backup_failure(world))
    with caplog.at_level(logging.WARNING, logger="appbackups.events"):
        assert world.run_deliveries() == 4  # the first attempt and the three retries of the schedule
    deliveries, _ = world.services.webhooks.deliveries("ns", "ops", limit=10, continuation=None)
    [delivery] = deliveries
    assert delivery.status is DeliveryStatus.FAILED
    assert [attempt.status_code for attempt in delivery.attempts] == [500, None, 503, 502]
    assert "refused" in delivery.attempts[1].error
    assert delivery.attempts[0].error.startswith("HTTP 500")
    waits = [(b.on - a.on).total_seconds() for a, b in zip(delivery.attempts, delivery.attempts[1:], strict=False)]
    assert waits == [5, 60, 600]
    assert delivery.attempts[0].on == started
    assert "given up after 4 attempts" in caplog.text


def test_a_receiver_that_comes_back_gets_the_event_on_a_retry() -> None:
    world = World()
    world.hook()
    world.transport.answers = [ConnectionRefusedError("down"), 500]
    world.services.deliveries.fan_out(publish_backup_failure(world))
    world.run_deliveries()
    [delivery], _ = world.services.webhooks.deliveries("ns", "ops", limit=10, continuation=None)
    assert delivery.status is DeliveryStatus.DELIVERED
    assert [attempt.status_code for attempt in delivery.attempts] == [None, 500, 200]
    ids = {post.headers["webhook-id"] for post in world.transport.posts}
    assert len(ids) == 1  # the same id on every attempt


def test_a_delivery_message_that_comes_early_waits_and_a_duplicate_is_dropped() -> None:
    world = World()
    world.hook()
    world.transport.answers = [500]
    document = publish_backup_failure(world)
    world.services.deliveries.fan_out(document)
    queue = world.queue(Queues.DELIVERIES)
    first = queue.pop().body
    world.services.deliveries.deliver(first["target"], first["key"])  # fails: the retry is queued
    assert [message.delay_seconds for message in queue.sent] == [5]
    world.services.deliveries.deliver(first["target"], first["key"])  # a duplicate, before it is due
    assert [message.delay_seconds for message in queue.sent] == [5, 5]
    world.clock.advance(5)
    world.run_deliveries()
    assert len(world.transport.posts) == 2  # the first attempt and one retry, not one per message


def test_a_receiver_that_answers_gone_is_given_up_at_once() -> None:
    world = World()
    world.hook()
    world.transport.answers = [410]
    world.services.deliveries.fan_out(publish_backup_failure(world))
    world.run_deliveries()
    [delivery], _ = world.services.webhooks.deliveries("ns", "ops", limit=10, continuation=None)
    assert (delivery.status, len(delivery.attempts)) == (DeliveryStatus.FAILED, 1)


def test_an_address_that_turned_private_is_not_contacted() -> None:
    world = World()
    world.hook()
    HOSTS["hooks.example.com"] = ["10.0.0.7"]  # the name now points inside
    try:
        world.services.deliveries.fan_out(publish_backup_failure(world))
        world.run_deliveries(limit=1)
    finally:
        HOSTS["hooks.example.com"] = ["93.184.215.14"]
    assert world.transport.posts == []
    [delivery], _ = world.services.webhooks.deliveries("ns", "ops", limit=10, continuation=None)
    assert "10.0.0.7, a private address" in delivery.attempts[0].error


def test_events_go_to_the_event_grid_topic_with_retries() -> None:
    world = World(event_grid=True)
    assert world.grid is not None
    world.grid.fail_next = 1
    document = publish_backup_failure(world)
    assert world.services.deliveries.fan_out(document) == [EVENT_GRID_TARGET]  # no webhook: the topic alone
    world.run_deliveries()
    [published] = world.grid.published
    assert published == json.loads(document)
    delivery = world.services.deliveries._deliveries.find(
        EVENT_GRID_TARGET, delivery_key(decode(document).time, published["id"])
    )
    assert delivery is not None
    assert [attempt.status_code for attempt in delivery.attempts] == [None, 200]


def test_the_event_grid_adapter_sends_the_sdk_cloudevents() -> None:
    class Client:
        def __init__(self) -> None:
            self.sent: list[AzureCloudEvent] = []

        def send(self, events: list[AzureCloudEvent]) -> None:
            self.sent.extend(events)

    client = Client()
    ended = operation("upload", OperationStatus.FINISHED, parameters={"uploadId": "up-1"})
    event = operation_event(ended, lambda environment, backup: None)
    assert event is not None
    AzureEventGridSink(client).publish([encode(event)])  # type: ignore[arg-type]
    [sent] = client.sent
    assert (sent.id, sent.type, sent.source, sent.subject) == (event.id, event.type.value, event.source, event.subject)
    assert sent.time == event.time
    assert sent.data == event.data
    assert sent.extensions == {"appbackupsnamespace": "ns"}


# -- the conditions to act on ----------------------------------------------------------------------


def test_a_missed_schedule_is_raised_once_per_missed_window() -> None:
    world = World()
    world.hook()
    services = world.services
    services.environments.put("idle", registration(state="Stopped").to_registration(), ADA)
    world.clock.advance(27 * 3600)
    assert services.events.schedules_missed(services.health.freshness()) == 2
    first = sorted(world.published())
    world.clock.advance(3600)  # the next hourly check: the same windows
    services.events.schedules_missed(services.health.freshness())
    second = sorted(world.published())
    assert [json.loads(d)["id"] for d in first] == [json.loads(d)["id"] for d in second]
    for document in first + second:
        services.deliveries.fan_out(document)
    world.run_deliveries()
    assert len(world.transport.posts) == 2  # one per environment, whatever the number of checks
    missed = [json.loads(post.body) for post in world.transport.posts]
    assert {m["type"] for m in missed} == {"appbackups.schedule.missed"}
    assert {m["data"]["environmentId"] for m in missed} == {"prod", "idle"}
    assert all(m["data"]["lastSuccessfulBackupOn"] is None for m in missed)


def test_a_schedule_is_not_missed_while_backups_are_fresh_or_the_environment_cannot_be_backed_up() -> None:
    world = World()
    services = world.services
    backup = services.backups.record("prod", ADA)
    services.backup_catalog.save(backup.finished(world.clock.now, dump_size=1, dump_sha256="0" * 64))
    world.clock.advance(3600)
    assert services.events.schedules_missed(services.health.freshness()) == 0
    world.clock.advance(30 * 3600)
    environment = services.environment_catalog.get("prod")
    services.environment_catalog.save(replace(environment, state=EnvironmentState.DEPLOYING))
    assert services.events.schedules_missed(services.health.freshness()) == 0
