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
    for snapshot in services().backup_runner.reap(timedelta(minutes=minutes)):
        logger.warning("backup %s of %s failed: %s", snapshot.id, snapshot.environment_id, snapshot.status_message)
    for operation in services().operations.reap():
        logger.warning("operation %s (%s) reaped: %s", operation.id, operation.kind, operation.status.value)
