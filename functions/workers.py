"""Queue triggers: the background work behind the API."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.adapters.queues import decode_message
from shared.bootstrap import services
from shared.config import STORAGE_CONNECTION, Queues

bp = func.Blueprint()
logger = logging.getLogger("appbackups.workers")


def _backup_reference(message: func.QueueMessage) -> tuple[str, str] | None:
    try:
        work = decode_message(message.get_body())
        return str(work["environmentId"]), str(work["snapshotId"])
    except (ValueError, KeyError) as error:
        logger.error("dropping malformed backup message %s: %s", message.id, error)
        return None


@bp.queue_trigger(arg_name="message", queue_name=Queues.BACKUPS, connection=STORAGE_CONNECTION)
def backup_worker(message: func.QueueMessage) -> None:
    """Make one backup. A transient fault raises, and the host delivers the message again."""
    reference = _backup_reference(message)
    if reference is not None:
        services().backup_runner.run(*reference)


@bp.queue_trigger(arg_name="message", queue_name=Queues.poison(Queues.BACKUPS), connection=STORAGE_CONNECTION)
def backup_gave_up(message: func.QueueMessage) -> None:
    """The host gave up on a backup message: fail the backup, unless a worker still holds it."""
    reference = _backup_reference(message)
    if reference is not None:
        services().backup_runner.give_up(
            *reference, "The backup failed on every delivery of its work message; see the activity log and logs."
        )


@bp.queue_trigger(arg_name="message", queue_name=Queues.OPERATIONS, connection=STORAGE_CONNECTION)
def operation_worker(message: func.QueueMessage) -> None:
    """Run one step of a restore, download or upload; the step queues the next."""
    try:
        work = decode_message(message.get_body())
        operation_id, step = str(work["operationId"]), int(work["step"])
    except (ValueError, KeyError) as error:
        logger.error("dropping malformed operation message %s: %s", message.id, error)
        return
    services().operations.advance(operation_id, step)


@bp.queue_trigger(arg_name="message", queue_name=Queues.poison(Queues.OPERATIONS), connection=STORAGE_CONNECTION)
def operation_gave_up(message: func.QueueMessage) -> None:
    """The host gave up on an operation message: fail the operation (and compensate) unless a worker holds it."""
    try:
        operation_id = str(decode_message(message.get_body())["operationId"])
    except (ValueError, KeyError):
        return
    services().operations.fail(operation_id, "The operation's work message failed on every delivery; see the logs.")
