"""Timers: the nightly, weekly and monthly backups (fanned out per environment), pruning, the weekly
restore drills, and the freshness check; and the nights view of the scheduled backups."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import azure.functions as func

from functions.http import SIGNED_IN, ApiBlueprint, ApiRequest, Reply, RouteSpec
from shared.adapters.queues import decode_message
from shared.bootstrap import services
from shared.config import STORAGE_CONNECTION, Queues
from shared.contracts.schedules import NightView
from shared.domain.backups import Tier
from shared.errors import InvalidRequest

bp = ApiBlueprint()
logger = logging.getLogger("appbackups.schedules")

DELIVERY_RECORDS_KEPT = timedelta(days=30)  # how long the deliveries of an event stay listed


def occurrence_of(timer: func.TimerRequest) -> datetime:
    """The scheduled time this invocation is for. The host's schedule status names it ``Next`` (the
    occurrence it was waiting for), also when the invocation is late (``past_due``) after downtime."""
    status = getattr(timer, "schedule_status", None) or {}
    value = status.get("Next") or status.get("next")
    if value:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        except ValueError:
            logger.warning("unreadable schedule status %r; using the current time", value)
    return datetime.now(UTC)


def run_by_hand(timer: func.TimerRequest) -> bool:
    """A timer invocation without a schedule status was asked for by hand (``devhost fire``, the admin
    endpoint), not by the schedule: its backups start at once instead of spread over the night."""
    status = getattr(timer, "schedule_status", None) or {}
    return not (status.get("Next") or status.get("next"))


def _fan_out(tier: Tier, timer: func.TimerRequest) -> None:
    occurrence = occurrence_of(timer)
    if timer.past_due:
        logger.warning("the %s timer is late (past due) for %s; catching up", tier.value, occurrence.isoformat())
    services().scheduler.fan_out(tier, occurrence, spread=not run_by_hand(timer))


@bp.timer_trigger(arg_name="timer", schedule="%APPBACKUPS_NIGHTLY_SCHEDULE%", run_on_startup=False)
def nightly_backups(timer: func.TimerRequest) -> None:
    _fan_out(Tier.NIGHTLY, timer)


@bp.timer_trigger(arg_name="timer", schedule="%APPBACKUPS_WEEKLY_SCHEDULE%", run_on_startup=False)
def weekly_backups(timer: func.TimerRequest) -> None:
    _fan_out(Tier.WEEKLY, timer)


@bp.timer_trigger(arg_name="timer", schedule="%APPBACKUPS_MONTHLY_SCHEDULE%", run_on_startup=False)
def monthly_backups(timer: func.TimerRequest) -> None:
    """Fires on Sundays; only the month's first Sunday makes a monthly backup."""
    _fan_out(Tier.MONTHLY, timer)


@bp.queue_trigger(arg_name="message", queue_name=Queues.SCHEDULED, connection=STORAGE_CONNECTION)
def scheduled_backup_worker(message: func.QueueMessage) -> None:
    """One environment's scheduled backup of one night: make it, or give it the longer retention."""
    try:
        work = decode_message(message.get_body())
        environment_id, tier = str(work["environmentId"]), Tier(work["tier"])
        night = datetime.fromisoformat(str(work["night"])).date()
    except (ValueError, KeyError) as error:
        logger.error("dropping malformed scheduled-backup message %s: %s", message.id, error)
        return
    services().scheduler.run(environment_id, tier, night)


@bp.timer_trigger(arg_name="timer", schedule="%APPBACKUPS_PRUNE_SCHEDULE%", run_on_startup=False)
def prune_backups(timer: func.TimerRequest) -> None:
    app = services()
    app.pruning.prune()
    app.deliveries.forget_before(datetime.now(UTC) - DELIVERY_RECORDS_KEPT)
    used = app.storage_usage.measure()  # the storage-used gauge, per namespace and store, after the prune
    namespaces = len({namespace for namespace, _ in used})
    logger.info("storage used after pruning: %d bytes in %d namespaces", sum(used.values()), namespaces)


@bp.timer_trigger(arg_name="timer", schedule="%APPBACKUPS_DRILL_SCHEDULE%", run_on_startup=False)
def restore_drills(timer: func.TimerRequest) -> None:
    """Weekly by default: a restore drill of the newest Finished backup of every environment (unless it opted out)."""
    services().drills.run_scheduled()


@bp.timer_trigger(arg_name="timer", schedule="0 30 * * * *", run_on_startup=False)
def check_backup_freshness(timer: func.TimerRequest) -> None:
    """Warn, every hour, about environments without a successful backup in the freshness window, and raise
    ``appbackups.schedule.missed`` for each (once per missed window: the same event id every hour)."""
    app = services()
    entries = app.health.freshness()
    for entry in entries:
        if entry.status == "stale":
            logger.warning(
                "environment %s has no successful backup since %s",
                entry.environment,
                entry.last_successful_backup.isoformat() if entry.last_successful_backup else "it was registered",
            )
    app.events.schedules_missed(entries)


@bp.api(
    "schedules/nights/{night}",
    "GET",
    RouteSpec(
        "A night of scheduled backups: per environment the caller may see, not due, waiting, running, done or "
        "failed, with counts",
        SIGNED_IN,
        response_model=NightView,
        tag="Schedules",
    ),
)
def get_night(request: ApiRequest) -> Reply:
    text = request.route("night")
    try:
        night = date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"{text!r} is not a night: give a date as YYYY-MM-DD (UTC), e.g. 2026-11-09.", code="invalid_night"
        ) from None
    if len(text) != 10:
        raise InvalidRequest(f"{text!r} is not a night: give a date as YYYY-MM-DD (UTC).", code="invalid_night")
    visible = services().access.visible_namespaces(request.caller)
    return Reply(200, NightView.of(services().nights.night(night, visible)))
