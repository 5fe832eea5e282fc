"""Events end to end: the real app in the development host, jobs run through the API, and a local
receiver (a small HTTP server on a free port) registered as the namespace's webhook. Each event type that
occurs arrives once per occurrence, signed (verified with the Standard Webhooks library, refused with a
wrong secret); a receiver that answers 500 or is down gets it on a retry; a slow receiver does not delay
the job; a host killed between a job's outcome and its event publishes it on resume, with the same id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared.config import Queues
from shared.domain.events import event_id
from shared.domain.operations import OperationStatus
from tests.support.appdata import create_scratch_app
from tests.support.apphost import AppHost, start_app_host
from tests.support.faults import LEASE_SECONDS, _wait_for_exit
from tests.support.polling import wait_for, wait_for_delivered_events, wait_for_status
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SETTINGS = {
    "APPBACKUPS_WEBHOOK_RETRY_SECONDS": "1,2,2,4,8,16",
    "APPBACKUPS_WEBHOOK_TIMEOUT_SECONDS": "10",
    "APPBACKUPS_OPERATION_LEASE_SECONDS": str(LEASE_SECONDS),
    "APPBACKUPS_OPERATION_RETRY_SECONDS": "1",
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def hosts(private_stack, tmp_path) -> Iterator[list[AppHost]]:
    started: list[AppHost] = []
    yield started
    for host in started:
        host.stop()


def start_host(private_stack, tmp_path, hosts: list[AppHost], crash_points: str = "") -> AppHost:
    settings = {**SETTINGS, "APPBACKUPS_CRASH_POINTS": crash_points}
    host = start_app_host(private_stack[1], tmp_path / f"host-{len(hosts)}.log", extra_settings=settings)
    hosts.append(host)
    return host


@pytest.fixture
def apps(private_stack, database_factory, postgres_admin_dsn):
    services = private_stack[0]
    source = create_scratch_app(services, database_factory(), postgres_admin_dsn, documents=2, customers=10)
    target = create_scratch_app(
        services, database_factory(), postgres_admin_dsn, namespace=source.namespace, state="Stopped", documents=1
    )
    return source, target


def register(api: str, namespace: str, url: str, events: list[str] | None = None) -> None:
    put = requests.put(
        f"{api}/namespaces/{namespace}/webhooks/receiver",
        json={"url": url, "events": events or ["*"], "secret": SECRET},
        timeout=30,
    )
    assert put.status_code == 201, put.text
    assert "secret" not in put.json()


def backup(api: str, environment_id: str, expect: str = "Finished") -> dict:
    created = requests.post(f"{api}/environments/{environment_id}/backups", json={}, timeout=30)
    assert created.status_code == 202, created.text
    done = wait_for_status(api.removesuffix("/api") + created.headers["Location"], "Processing")
    assert done["status"] == expect, done
    return done


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def verified(received) -> dict:  # type: ignore[no-untyped-def]
    """The event, its signature checked with the library; a wrong secret is refused."""
    event = StandardWebhook(SECRET).verify(received.body, received.headers)
    with pytest.raises(WebhookVerificationError):
        StandardWebhook("whsec_" + "B" * 32).verify(received.body, received.headers)
    assert received.headers["webhook-id"] == event["id"]
    assert received.headers["content-type"].startswith("application/cloudevents+json")
    assert event["specversion"] == "1.0"
    return event


def test_each_job_outcome_arrives_once_signed(private_stack, tmp_path, hosts, receiver, apps) -> None:
    source, target = apps
    host = start_host(private_stack, tmp_path, hosts)
    api, base = host.api, host.api.removesuffix("/api")
    register(api, source.namespace, receiver.url)

    made = backup(api, source.environment_id)
    download = requests.post(
        f"{api}/environments/{source.environment_id}/backups/{made['id']}/download",
        json={"dataType": "database_only"},
        timeout=30,
    )
    assert download.status_code == 202, download.text
    ready = wait_for_status(f"{api}/environments/{source.environment_id}/backups/{made['id']}/download", "Processing")
    assert ready["status"] == "Ready", ready
    restore = requests.post(
        f"{api}/environments/{source.environment_id}/backups/{made['id']}/restore",
        json={"targetEnvironment": target.environment_id},
        timeout=30,
    )
    assert restore.status_code == 202, restore.text
    restored = wait_for_status(base + restore.headers["Location"])
    assert restored["status"] == "Finished", restored
    upload = requests.post(f"{api}/environments/{source.environment_id}/uploads", json={}, timeout=30).json()
    requests.put(upload["uploadUrl"], data=b"not an archive", headers={"x-ms-blob-type": "BlockBlob"}, timeout=30)
    completed = requests.post(base + upload["completeUrl"], timeout=30)
    refused = wait_for_status(base + completed.headers["Location"], "Processing")
    assert refused["status"] == "Failed"
    source.container.delete_container()  # the next backup cannot read its file documents: it fails for good
    failed = backup(api, source.environment_id, expect="Failed")

    expected = {
        "appbackups.backup.finished": 2,  # the source's backup and the target's pre-restore backup
        "appbackups.download.ready": 1,
        "appbackups.restore.finished": 1,
        "appbackups.upload.failed": 1,
        "appbackups.backup.failed": 1,
    }
    for event_type, count in expected.items():
        receiver.wait_for(event_type, count)
    wait_for_delivered_events(private_stack[0].clients)  # what was sent twice would be here now
    events = [verified(received) for received in receiver.events()]
    assert sorted(event["type"] for event in events) == sorted(t for t, n in expected.items() for _ in range(n))
    assert len({event["id"] for event in events}) == len(events)  # one delivery per occurrence

    by_type = {event["type"]: event for event in events}
    finished = [event for event in events if event["type"] == "appbackups.backup.finished"]
    mine = next(event for event in finished if event["data"]["backupId"] == made["id"])
    assert mine["source"] == f"/namespaces/{source.namespace}/environments/{source.environment_id}"
    assert mine["subject"] == f"backups/{made['id']}"
    assert mine["id"] == event_id(f"{made['operationId']}/appbackups.backup.finished")
    assert (mine["data"]["dumpSize"], mine["data"]["fileCount"]) == (made["dumpSize"], made["fileCount"])
    assert {event["data"]["tier"] for event in finished} == {"manual", "pre-restore"}
    assert by_type["appbackups.restore.finished"]["data"]["sourceEnvironmentId"] == source.environment_id
    assert by_type["appbackups.restore.finished"]["data"]["environmentId"] == target.environment_id
    assert moment(by_type["appbackups.download.ready"]["data"]["expiresOn"]) == moment(ready["expiresOn"])
    assert by_type["appbackups.backup.failed"]["data"]["backupId"] == failed["id"]
    assert "does not exist" in by_type["appbackups.backup.failed"]["data"]["reason"]
    assert "neither a Full Snapshot archive" in by_type["appbackups.upload.failed"]["data"]["reason"]
    for received in receiver.events():
        assert b"sig=" not in received.body  # no SAS URL, in any event
        assert b"http" not in received.body

    deliveries = requests.get(f"{api}/namespaces/{source.namespace}/webhooks/receiver/deliveries", timeout=30).json()
    assert len(deliveries["items"]) == len(events)
    assert {item["status"] for item in deliveries["items"]} == {"Delivered"}
    assert all(item["attempts"][-1]["statusCode"] == 200 for item in deliveries["items"])
    listed = requests.get(f"{api}/namespaces/{source.namespace}/webhooks", timeout=30).json()["items"]
    assert listed[0]["lastDelivery"]["status"] == "Delivered"


def test_a_failing_slow_or_absent_receiver_gets_it_later_and_never_holds_up_the_job(
    private_stack, tmp_path, hosts, receiver, apps
) -> None:
    source, _ = apps
    host = start_host(private_stack, tmp_path, hosts)
    register(host.api, source.namespace, receiver.url, ["appbackups.backup.*"])

    receiver.script = [(500, 4.0)]  # slow, and then an error
    first = backup(host.api, source.environment_id)
    operations = private_stack[0].operations
    wait_for(lambda: operations.get(first["operationId"]).announced, 60, what="the job's very last act")
    job_done = time.time()
    [delivered] = receiver.wait_for("appbackups.backup.finished")
    attempts = receiver.events("appbackups.backup.finished")
    assert [r.status for r in attempts] == [500, 200]
    assert job_done < attempts[0].answered, "the backup waited for the receiver"
    assert attempts[0].headers["webhook-id"] == attempts[1].headers["webhook-id"]
    assert verified(delivered)["data"]["backupId"] == first["id"]

    receiver.stop()  # the receiver is down
    second = backup(host.api, source.environment_id)
    url = f"{host.api}/namespaces/{source.namespace}/webhooks/receiver/deliveries"

    def first_attempt_failed() -> dict | None:
        items = requests.get(url, timeout=30).json()["items"]
        return items[0] if len(items) == 2 and items[0]["attempts"] else None

    latest = wait_for(first_attempt_failed, 30, interval=0.2, what="a failed attempt at the second delivery")
    assert latest["attempts"][0]["statusCode"] is None
    assert latest["attempts"][0]["error"]
    receiver.start()
    events = receiver.wait_for("appbackups.backup.finished", 2)
    assert verified(events[-1])["data"]["backupId"] == second["id"]
    items = requests.get(url, timeout=30).json()["items"]
    assert items[0]["status"] == "Delivered"
    assert items[0]["attempts"][-1]["statusCode"] == 200
    assert [a["statusCode"] for a in items[1]["attempts"]] == [500, 200]


def test_a_host_killed_between_the_outcome_and_the_event_sends_it_on_resume(
    private_stack, tmp_path, hosts, receiver, apps
) -> None:
    source, _ = apps
    services = private_stack[0]
    armed = start_host(private_stack, tmp_path, hosts, crash_points="events.before_publish")
    register(armed.api, source.namespace, receiver.url)
    created = requests.post(f"{armed.api}/environments/{source.environment_id}/backups", json={}, timeout=30)
    assert created.status_code == 202, created.text
    operation_id = created.json()["operationId"]
    _wait_for_exit(armed, 120)
    crashed = services.operations.get(operation_id)
    assert crashed.status is OperationStatus.FINISHED  # the outcome is checkpointed…
    assert not crashed.announced  # …and what follows it is not done
    assert services.clients.queue(Queues.EVENTS).get_queue_properties().approximate_message_count == 0
    assert receiver.events() == []  # the host is gone: nothing more can come of it
    killed_on = datetime.now(UTC)

    start_host(private_stack, tmp_path, hosts)
    [received] = receiver.wait_for("appbackups.backup.finished", timeout=LEASE_SECONDS + 60)
    event = verified(received)
    assert event["id"] == event_id(f"{operation_id}/appbackups.backup.finished")
    wait_for_delivered_events(services.clients)
    assert len(receiver.events()) == 1
    resumed = services.operations.get(operation_id)
    assert resumed.announced
    assert resumed.updated_on > killed_on
