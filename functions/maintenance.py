"""Timers that keep the service tidy."""

from __future__ import annotations

import logging
from datetime import timedelta

import azure.functions as func

from shared.bootstrap import services

bp = func.Blueprint()
logger = logging.getLogger("appbackups.maintenance")


@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False)
def reap_stale_work(timer: func.TimerRequest) -> None:
    """Nothing stays Processing or Running forever: fail backups whose worker vanished, resume (or,
    when they keep stalling, fail) operations whose worker vanished."""
    minutes = services().settings.stale_work_minutes
    reaped = services().backup_runner.reap(timedelta(minutes=minutes))  # each failure is logged as it is made
    if reaped:
        logger.info("reaped %d abandoned backups", len(reaped))
    for operation in services().operations.reap():
        logger.warning("operation %s (%s) reaped: %s", operation.id, operation.kind, operation.status.value)


@bp.timer_trigger(arg_name="timer", schedule="0 15,45 * * * *", run_on_startup=False)
def remove_expired_transfers(timer: func.TimerRequest) -> None:
    """Prepared archives go once their 8 hours are over; uploads never completed go once their URL expired."""
    for operation in services().downloads.clean_up():
        logger.info("removed the expired archive of download %s (backup %s)", operation.id, operation.snapshot_id)
    for session in services().uploads.clean_up():
        logger.info("removed the abandoned upload %s of %s", session.id, session.environment_id)
