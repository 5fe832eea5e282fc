"""Events against real Azurite and a real receiver: pruning raises backup.expired for each backup it
forgets; the fan-out and the delivery run on the real tables; the real transport connects to the checked
loopback address (development mode) and signs per Standard Webhooks."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from shared.contracts.environments import EnvironmentBody
from shared.domain.access import Principal
from shared.domain.events import DeliveryStatus, event_id
from tests.support.receiver import Receiver
from tests.support.restoring import Harness

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def test_pruning_raises_one_signed_expiry_event_per_forgotten_backup(storage_services, storage_connection_string,
                                                                    receiver):  # fmt: skip
    harness = Harness(storage_connection_string, APPBACKUPS_DEVELOPMENT_MODE="true")
    services = harness.services
    namespace = f"ev-{uuid.uuid4().hex[:8]}"
    environment_id = f"{namespace}-prod"
    body = {
        "namespace": namespace,
        "appName": "app",
        "displayName": "Production",
        "state": "Running",
        "database": {"host": "127.0.0.1", "database": "none", "user": "postgres"},
        "files": {"container": f"files-{namespace}"},
    }
    services.environments.put(environment_id, EnvironmentBody.model_validate(body).to_registration(), ADA)
    services.webhooks.put(
        namespace, "expiries", url=receiver.url, events=("appbackups.backup.expired",), secret=SECRET,
        description="", caller=ADA,
    )  # fmt: skip
    old = datetime(2020, 1, 1, tzinfo=UTC)
    expired = services.backups.record(environment_id, ADA)
    services.backup_catalog.save(replace(expired.finished(old, dump_size=1, dump_sha256="0" * 64), expires_on=old))
    kept = services.backups.record(environment_id, ADA)
    services.backup_catalog.save(kept.finished(kept.created_on, dump_size=1, dump_sha256="0" * 64))

    report = services.pruning.prune(namespaces_only={namespace})
    assert [backup.id for backup in report.forgotten] == [expired.id]
    outbox = harness.queues["events"]
    [published] = [message.body["event"] for message in outbox.sent]
    assert services.deliveries.fan_out(published) == [f"{namespace}~expiries"]
    deliveries = harness.queues["event-deliveries"]
    message = deliveries.pop().body
    delivered = services.deliveries.deliver(message["target"], message["key"])
    assert delivered is not None
    assert delivered.status is DeliveryStatus.DELIVERED

    [received] = receiver.events()
    event = StandardWebhook(SECRET).verify(received.body, received.headers)
    assert event["id"] == event_id(f"{expired.id}/appbackups.backup.expired")
    assert event["type"] == "appbackups.backup.expired"
    assert event["subject"] == f"backups/{expired.id}"
    assert event["data"]["backupId"] == expired.id
    assert event["data"]["environmentId"] == environment_id
    assert json.loads(published)["id"] == event["id"]
    [listed], _ = services.webhooks.deliveries(namespace, "expiries", limit=10, continuation=None)
    assert [attempt.status_code for attempt in listed.attempts] == [200]
    assert services.webhooks.last_delivery(services.webhooks.get(namespace, "expiries")) == listed
