"""The one way an operation is launched (OperationEngine.launch): queued once, or, when the queue is down,
abandoned with a 503 — on the engine alone and in each of the five use cases that launch one."""

from dataclasses import dataclass
from datetime import timedelta

import pytest

from shared.adapters.errors import StorageFault
from shared.adapters.queues import MemoryWorkQueue
from shared.adapters.tables import MemoryRowTable
from shared.bootstrap import Services, install_services
from shared.catalog.operations import OperationCatalog
from shared.config import Queues
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import Principal
from shared.domain.backups import Actor, Backup, BackupStatus, Tier
from shared.domain.downloads import DataType
from shared.domain.environments import EnvironmentState
from shared.domain.operations import UNDO, OperationStatus, StepStatus
from shared.domain.verification import VerificationStatus
from shared.errors import ErrorKind, ServiceUnavailable
from shared.operations.engine import EngineSettings, OperationDefinition, OperationEngine, StepDefinition
from tests.support.functions import call
from tests.support.memory import ManualClock, SteppingClock, memory_services

ADA = Principal("ada", "Ada")


class OutageQueue(MemoryWorkQueue):
    """A work queue twin that refuses every message while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def send(self, message, *, delay_seconds=0):
        if self.down:
            raise StorageFault("queue down")
        super().send(message, delay_seconds=delay_seconds)


# -- the engine ------------------------------------------------------------------------------------


@pytest.fixture
def engine():
    queue = OutageQueue()
    engine = OperationEngine(
        OperationCatalog(MemoryRowTable()),
        queue,
        ManualClock(),
        EngineSettings(
            max_attempts=3,
            retry_base=timedelta(seconds=5),
            lease=timedelta(minutes=2),
            watchdog_slack=timedelta(seconds=5),
            stale_after=timedelta(minutes=3),
        ),
    )
    engine.undone = []
    engine.register(
        OperationDefinition(
            "toy",
            (StepDefinition("only", "Only", lambda context: None),),
            undo=StepDefinition(UNDO, "Undo", lambda context: engine.undone.append(context.operation.id)),
        )
    )
    engine.queue = queue
    return engine


def new(engine):
    return engine.new("toy", environment_id="env", namespace="ns", actor=Actor("ada", "Ada"))


def test_a_launch_queues_the_operation_once(engine):
    operation = new(engine)
    engine.launch(operation, "toy")
    assert engine.queue.messages == [{"kind": "operation", "operationId": operation.id, "step": 0}]
    assert engine.get(operation.id).status is OperationStatus.RUNNING


def test_a_launch_by_id_queues_a_wake_up(engine):
    operation = new(engine)
    engine.launch(operation.id, "toy")
    assert engine.queue.messages == [{"kind": "operation", "operationId": operation.id}]


def test_a_queue_outage_abandons_the_operation_and_answers_503(engine):
    operation = new(engine)
    engine.queue.down = True
    with pytest.raises(ServiceUnavailable) as refused:
        engine.launch(operation, "toy")
    assert refused.value.kind is ErrorKind.UNAVAILABLE
    assert (refused.value.code, refused.value.detail) == (
        "unavailable",
        "The work queue is unavailable; the toy was not started.",
    )
    abandoned = engine.get(operation.id)
    assert (abandoned.status, abandoned.error) == (OperationStatus.FAILED, "The toy could not be queued.")
    assert [step.status for step in abandoned.steps] == [StepStatus.FAILED, StepStatus.FINISHED]
    assert engine.undone == [operation.id]
    assert engine.queue.messages == []


def test_the_refusal_can_say_more_and_carry_its_own_code(engine):
    engine.queue.down = True
    with pytest.raises(ServiceUnavailable) as refused:
        engine.launch(new(engine), "toy", detail="Try again shortly.", code="queue_unavailable")
    assert (refused.value.code, refused.value.detail) == ("queue_unavailable", "Try again shortly.")


def test_a_kept_operation_waits_through_an_outage_for_a_second_launch(engine):
    operation = new(engine)
    engine.queue.down = True
    with pytest.raises(ServiceUnavailable):
        engine.launch(operation, "toy", keep=True)
    waiting = engine.get(operation.id)
    assert (waiting.status, waiting.ending, waiting.error) == (OperationStatus.RUNNING, None, "")
    assert engine.undone == []
    engine.queue.down = False
    engine.launch(waiting, "toy", keep=True)
    assert engine.queue.messages == [{"kind": "operation", "operationId": operation.id, "step": 0}]


# -- the five use cases ----------------------------------------------------------------------------


def registration(state: str) -> dict:
    return {
        "namespace": "ns",
        "appName": "app",
        "displayName": "An environment",
        "state": state,
        "database": {"host": "h", "database": "d", "user": "u"},
        "files": {"container": "files"},
    }


@dataclass
class World:
    services: Services
    queue: OutageQueue
    backup: Backup  # Finished
    clock: SteppingClock


@pytest.fixture
def world():
    queue, clock = OutageQueue(), SteppingClock()
    services = memory_services(clock, queues={Queues.OPERATIONS: queue}, development_mode=True)
    for environment, state in (("prod", "Running"), ("acc", "Stopped")):
        services.environments.put(
            environment, EnvironmentBody.model_validate(registration(state)).to_registration(), ADA
        )
    backup = services.backups.record("prod", ADA)
    finished = services.backup_catalog.save(backup.finished(backup.created_on, dump_size=1, dump_sha256="0" * 64))
    queue.clear()
    queue.down = True
    return World(services, queue, finished, clock)


def refusal(start) -> ServiceUnavailable:
    with pytest.raises(ServiceUnavailable) as refused:
        start()
    return refused.value


def test_a_backup_is_failed_when_it_cannot_be_queued(world):
    services, queue = world.services, world.queue
    error = refusal(lambda: services.backups.request("prod", ADA))
    assert (error.code, error.detail) == (
        "queue_unavailable",
        "The work queue is unavailable; the backup was not started. Try again shortly.",
    )
    backups, _ = services.backups.page("prod", limit=10, continuation=None)
    failed = backups[0]
    assert failed.status is BackupStatus.FAILED
    assert services.operations.get(str(failed.operation_id)).error == "The backup could not be queued."
    assert queue.messages == []


def test_a_restore_that_cannot_be_queued_gives_the_target_back(world):
    services, backup = world.services, world.backup
    error = refusal(lambda: services.restores.request("prod", backup.id, "acc", ADA))
    assert (error.code, error.detail) == ("unavailable", "The work queue is unavailable; the restore was not started.")
    target = services.environment_catalog.get("acc")
    assert (target.state, target.active_restore_id) == (EnvironmentState.STOPPED, None)
    assert services.backup_catalog.get("prod", backup.id).in_use_by == ()


def test_a_drill_that_cannot_be_queued_fails_the_verification_and_frees_the_backup(world):
    services, backup = world.services, world.backup
    error = refusal(lambda: services.drills.request("prod", backup.id, ADA))
    assert (error.code, error.detail) == ("unavailable", "The work queue is unavailable; the drill was not started.")
    after = services.backup_catalog.get("prod", backup.id)
    assert after.verification is not None
    assert after.verification.status is VerificationStatus.FAILED
    assert [check.detail for check in after.verification.checks] == ["The drill could not be queued."]
    assert after.in_use_by == ()


def test_a_download_that_cannot_be_queued_is_failed(world):
    services, backup = world.services, world.backup
    error = refusal(lambda: services.downloads.request("prod", backup.id, DataType.DATABASE_ONLY, ADA))
    assert (error.code, error.detail) == ("unavailable", "The work queue is unavailable; the download was not started.")
    operation_id = services.backup_catalog.get("prod", backup.id).downloads[DataType.DATABASE_ONLY.value]
    abandoned = services.operations.get(operation_id)
    assert (abandoned.status, abandoned.error) == (OperationStatus.FAILED, "The download could not be queued.")
    assert services.backup_catalog.get("prod", backup.id).in_use_by == ()


def test_an_upload_is_not_abandoned_in_an_outage_and_the_reaper_queues_it(world):
    services, queue, clock = world.services, world.queue, world.clock
    session, _ = services.uploads.start("prod", ADA)
    services.stores.uploads.put(session.blob_name, b"an archive")
    error = refusal(lambda: services.uploads.complete("prod", session.id, ADA))
    assert (error.code, error.detail) == (
        "unavailable",
        "The work queue is unavailable; try completing the upload again.",
    )
    backups, _ = services.backups.page("prod", limit=10, continuation=None)
    uploaded = next(backup for backup in backups if backup.tier is Tier.UPLOADED)
    assert uploaded.status is BackupStatus.PROCESSING
    waiting = services.operations.get(str(uploaded.operation_id))
    assert (waiting.status, waiting.ending) == (OperationStatus.RUNNING, None)
    queue.down = False
    clock.now += timedelta(hours=1)
    assert waiting.id in {operation.id for operation in services.operations.reap()}
    assert {"kind": "operation", "operationId": waiting.id, "step": 0} in queue.messages


def test_completing_an_upload_again_after_an_outage_queues_it_as_the_503_says(world):
    services, queue = world.services, world.queue
    session, _ = services.uploads.start("prod", ADA)
    services.stores.uploads.put(session.blob_name, b"an archive")
    refusal(lambda: services.uploads.complete("prod", session.id, ADA))
    assert queue.messages == []
    queue.down = False
    backup, operation = services.uploads.complete("prod", session.id, ADA)
    assert operation is not None
    assert backup.operation_id == operation.id
    assert queue.messages == [{"kind": "operation", "operationId": operation.id, "step": 0}]


def test_the_api_answers_a_queue_outage_with_a_503_to_try_again(world):
    install_services(world.services)
    try:
        status, headers, document = call(
            "create_backup", "POST", "environments/prod/backups", route={"env": "prod"}, body={}
        )
    finally:
        install_services(None)
    assert (status, headers.get("Retry-After"), document["code"]) == (503, "30", "queue_unavailable")
