"""Queue triggers: the background work behind the API. Every long job is an operation of one engine."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.adapters.queues import decode_message
from shared.bootstrap import services
from shared.config import STORAGE_CONNECTION, Queues

bp = func.Blueprint()
POISONED = Queues.poison(Queues.OPERATIONS)
logger = logging.getLogger("appbackups.workers")


def _operation_reference(message: func.QueueMessage) -> tuple[str, str | None] | None:
    try:
        work = decode_message(message.get_body())
        watch = work.get("watch")
        return str(work["operationId"]), str(watch) if watch else None
    except (ValueError, KeyError) as error:
        logger.error("dropping malformed operation message %s: %s", message.id, error)
        return None


@bp.queue_trigger(arg_name="message", queue_name=Queues.OPERATIONS, connection=STORAGE_CONNECTION)
def operation_worker(message: func.QueueMessage) -> None:
    """Wake an operation: run its current step (and the next ones), or look again later. A storage
    error raises, and the host delivers the message again."""
    reference = _operation_reference(message)
    if reference is not None:
        operation_id, watch = reference
        services().operations.handle(operation_id, watch=watch)


@bp.queue_trigger(arg_name="message", queue_name=POISONED, connection=STORAGE_CONNECTION)
def operation_gave_up(message: func.QueueMessage) -> None:
    """The host gave up on an operation message: fail the operation (its undo runs) unless a worker holds it."""
    reference = _operation_reference(message)
    if reference is not None:
        # The poison-queue alert (infra/alerts/poison-queue.kql) matches this line.
        logger.error("poison message %s on %s: operation %s is abandoned", message.id, POISONED, reference[0])
        services().operations.abandon(
            reference[0], "The operation's work message failed on every delivery; see the logs."
        )
