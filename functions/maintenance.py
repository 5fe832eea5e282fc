"""Timers that keep the service tidy."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.bootstrap import services

bp = func.Blueprint()
logger = logging.getLogger("appbackups.maintenance")


@bp.timer_trigger(arg_name="timer", schedule="0 */2 * * * *", run_on_startup=False)
def reap_stale_work(timer: func.TimerRequest) -> None:
    """The safety net for lost messages: wake open operations nobody has touched for a while, release
    backups still marked in use by work that has ended, and fail backups no work is making."""
    report = services().reaper.reap()  # each action is logged as it is taken
    if report.woken or report.released or report.orphans_failed:
        logger.info(
            "reaped: %d operations woken, %d in-use marks released, %d orphaned backups failed",
            len(report.woken),
            len(report.released),
            len(report.orphans_failed),
        )


@bp.timer_trigger(arg_name="timer", schedule="0 15,45 * * * *", run_on_startup=False)
def remove_expired_transfers(timer: func.TimerRequest) -> None:
    """Prepared archives go once their 8 hours are over; uploads never completed go once their URL expired."""
    for operation in services().downloads.clean_up():
        logger.info("removed the expired archive of download %s (backup %s)", operation.id, operation.backup_id)
    for session in services().uploads.clean_up():
        logger.info("removed the abandoned upload %s of %s", session.id, session.environment_id)
