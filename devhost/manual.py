"""Trigger values for running a timer or queue function by hand (admin API, ``python -m devhost fire``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import azure.functions.queue as func_queue

from devhost.loader import QUEUE_TRIGGER, TIMER_TRIGGER, FunctionInfo
from devhost.timers import timer_request


class NotManuallyRunnable(ValueError):
    """The function's trigger cannot be run by hand (HTTP functions are called through their route)."""


def manual_trigger_value(function: FunctionInfo, input_text: str | None) -> Any:
    """What the function receives when run once by hand with ``input_text``.

    A timer gets a ``TimerRequest`` that is not past due (the input is ignored, as the host ignores it);
    a queue function gets a message whose body is the input, with dequeue count 1.
    """
    if function.trigger_type == TIMER_TRIGGER:
        return timer_request(past_due=False)
    if function.trigger_type == QUEUE_TRIGGER:
        now = dt.datetime.now(dt.UTC)
        return func_queue.QueueMessage(
            id=str(uuid.uuid4()),
            body=(input_text or "").encode("utf-8"),
            dequeue_count=1,
            insertion_time=now,
            expiration_time=now + dt.timedelta(days=7),
            time_next_visible=now,
            pop_receipt=None,
        )
    raise NotManuallyRunnable(
        f"'{function.name}' has a {function.trigger_type or 'missing'} trigger; only timer and queue functions "
        "can be run by name (call HTTP functions through their route)"
    )


def manual_details(function: FunctionInfo) -> str:
    return ", DequeueCount=1, Manual=True" if function.trigger_type == QUEUE_TRIGGER else ", Manual=True"
