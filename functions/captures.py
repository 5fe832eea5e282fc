"""The capture timer (every minute by default): the file documents of every environment with point-in-time
recovery, copied into the content store as its database comes to refer to them."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.bootstrap import services

bp = func.Blueprint()
logger = logging.getLogger("appbackups.captures")


@bp.timer_trigger(arg_name="timer", schedule="%APPBACKUPS_CAPTURE_SCHEDULE%", run_on_startup=False)
def capture_file_documents(timer: func.TimerRequest) -> None:
    """Each environment's run is logged by the use case; one that fails does not stop the others."""
    if timer.past_due:
        logger.warning("the capture timer is late (past due); capturing now")
    outcome = services().captures.capture_all()
    if outcome.failed:
        logger.warning(
            "captures failed for %d of %d environments: %s",
            len(outcome.failed),
            len(outcome.failed) + len(outcome.reports),
            ", ".join(sorted(outcome.failed)),
        )
