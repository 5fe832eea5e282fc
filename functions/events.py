"""Queue triggers of the events: the fan-out of each published event (the outbox), and each delivery to
a webhook or the Event Grid topic. A delivery's retries are its own (delayed messages, after the retry
schedule); a storage error raises, and the host delivers the message again."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.adapters.queues import decode_message
from shared.bootstrap import services
from shared.config import STORAGE_CONNECTION, Queues

bp = func.Blueprint()
logger = logging.getLogger("appbackups.events")


@bp.queue_trigger(arg_name="message", queue_name=Queues.EVENTS, connection=STORAGE_CONNECTION)
def event_fan_out(message: func.QueueMessage) -> None:
    """Record and queue the deliveries of one published event, to each of its targets."""
    try:
        document = str(decode_message(message.get_body())["event"])
        services().deliveries.fan_out(document)
    except (ValueError, KeyError) as error:
        logger.error("dropping malformed event message %s: %s", message.id, error)


@bp.queue_trigger(arg_name="message", queue_name=Queues.DELIVERIES, connection=STORAGE_CONNECTION)
def event_delivery(message: func.QueueMessage) -> None:
    """Attempt one delivery, or put the message off until its next attempt is due."""
    try:
        work = decode_message(message.get_body())
        target, key = str(work["target"]), str(work["key"])
    except (ValueError, KeyError) as error:
        logger.error("dropping malformed delivery message %s: %s", message.id, error)
        return
    services().deliveries.deliver(target, key)
