"""The scheduler on in-memory storage: fan-out, one backup per night, the longest retention wins."""

import itertools
import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from shared.adapters.queues import MemoryWorkQueue
from shared.adapters.tables import MemoryRowTable
from shared.bootstrap import build_services
from shared.config import Settings, StorageConnection
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import SYSTEM
from shared.domain.backups import BackupStatus, Tier
from tests.support.memory import SteppingClock
from tools.azurite import connection_string

SUNDAY = date(2026, 11, 8)
FIRST_SUNDAY = date(2026, 11, 1)
MONDAY = date(2026, 11, 9)


def occurrence(night: date) -> datetime:
    return datetime(night.year, night.month, night.day, 2, tzinfo=UTC)


@pytest.fixture
def world():
    tables: dict = {}
    queues: dict = {}
    clock = SteppingClock(start=datetime(2026, 11, 1, 1, tzinfo=UTC), step=timedelta(seconds=1))
    services = build_services(
        Settings(storage=StorageConnection(connection_string=connection_string(1, 1, 1))),
        tables=lambda name: tables.setdefault(name, MemoryRowTable(name)),
        queues=lambda name: queues.setdefault(name, MemoryWorkQueue()),
        clock=clock,
    )

    def register(environment_id, state="Running"):
        body = EnvironmentBody.model_validate(
            {
                "namespace": "ns",
                "appName": "app",
                "displayName": environment_id,
                "state": state,
                "database": {"host": "h", "database": "d", "user": "u"},
                "files": {"container": "files"},
            }
        )
        services.environments.put(environment_id, body.to_registration(), SYSTEM)

    register("prod")
    register("acc", "Stopped")
    register("busy", "Deploying")
    return services, queues, register


def scheduled_messages(queues):
    return queues.setdefault("scheduled-backups", MemoryWorkQueue()).messages


def backup_messages(queues):
    return queues.setdefault("operation-work", MemoryWorkQueue())


def queued_backups(services, queues):
    """The backups whose making was queued (each message wakes a backup operation)."""
    operations = (services.operations.find(m["operationId"]) for m in backup_messages(queues).messages)
    return {operation.backup_id for operation in operations if operation is not None}


def test_the_nightly_timer_fans_out_per_eligible_environment_and_logs_skips(world, caplog):
    services, queues, _ = world
    with caplog.at_level(logging.WARNING, logger="appbackups.schedules"):
        fan_out = services.scheduler.fan_out(Tier.NIGHTLY, occurrence(MONDAY))
    assert set(fan_out.queued) == {"prod", "acc"}
    assert fan_out.skipped == (("busy", "Deploying"),)
    assert "busy" in caplog.text
    assert "Deploying" in caplog.text
    assert sorted(m["environmentId"] for m in scheduled_messages(queues)) == ["acc", "prod"]
    assert {m["night"] for m in scheduled_messages(queues)} == {"2026-11-09"}


def test_weekly_and_monthly_timers_only_fan_out_when_due(world):
    services, _queues, _ = world
    assert services.scheduler.fan_out(Tier.WEEKLY, occurrence(MONDAY)).queued == ()
    assert services.scheduler.fan_out(Tier.MONTHLY, occurrence(SUNDAY)).queued == ()  # not the first Sunday
    assert set(services.scheduler.fan_out(Tier.MONTHLY, occurrence(FIRST_SUNDAY)).queued) == {"prod", "acc"}
    assert set(services.scheduler.fan_out(Tier.WEEKLY, occurrence(SUNDAY)).queued) == {"prod", "acc"}


@pytest.mark.parametrize(
    "firings",
    list(itertools.permutations([Tier.NIGHTLY, Tier.WEEKLY, Tier.MONTHLY, Tier.NIGHTLY, Tier.WEEKLY])),
    ids=lambda firings: "-".join(tier.value for tier in firings),
)
def test_any_order_and_repeats_make_one_backup_with_the_longest_retention(world, firings):
    services, queues, _ = world
    for tier in firings:
        services.scheduler.run("prod", tier, FIRST_SUNDAY)
    backups, _ = services.backups.page("prod", limit=10, continuation=None)
    assert len(backups) == 1
    (backup,) = backups
    assert backup.tier is Tier.MONTHLY
    assert backup.expires_on == backup.created_on.replace(year=backup.created_on.year + 1)
    assert backup.status is BackupStatus.PROCESSING
    assert queued_backups(services, queues) == {backup.id}
    state = services.scheduler.state("prod")
    assert state.last.night == FIRST_SUNDAY
    assert set(state.last.tiers) == {Tier.NIGHTLY, Tier.WEEKLY, Tier.MONTHLY}


def test_each_night_gets_its_own_backup(world):
    services, _, _ = world
    first = services.scheduler.run("prod", Tier.NIGHTLY, MONDAY)
    second = services.scheduler.run("prod", Tier.NIGHTLY, MONDAY + timedelta(days=1))
    assert first.id != second.id
    assert services.scheduler.run("prod", Tier.NIGHTLY, MONDAY).id == first.id
    assert services.scheduler.state("prod").last.night == MONDAY + timedelta(days=1)


def test_a_late_firing_serves_the_night_it_was_scheduled_for(world):
    services, queues, _ = world
    late = occurrence(MONDAY)  # the 02:00 occurrence, delivered hours later after downtime
    services.scheduler.fan_out(Tier.NIGHTLY, late)
    assert {m["night"] for m in scheduled_messages(queues)} == {"2026-11-09"}


def test_a_finished_backup_is_still_upgraded_and_not_made_twice(world):
    services, queues, _ = world
    made = services.scheduler.run("prod", Tier.NIGHTLY, SUNDAY)
    catalog = services.backup_catalog
    catalog.save(made.finished(made.created_on + timedelta(minutes=5), dump_size=1))
    backup_messages(queues).clear()
    again = services.scheduler.run("prod", Tier.WEEKLY, SUNDAY)
    assert again.id == made.id
    assert again.tier is Tier.WEEKLY
    assert again.status is BackupStatus.FINISHED
    assert backup_messages(queues).messages == []


def test_an_environment_deploying_at_run_time_is_skipped(world, caplog):
    services, _, _register = world
    with caplog.at_level(logging.WARNING, logger="appbackups.schedules"):
        assert services.scheduler.run("busy", Tier.NIGHTLY, MONDAY) is None
    assert "Deploying" in caplog.text
    backups, _ = services.backups.page("busy", limit=10, continuation=None)
    assert backups == []


def test_the_schedule_state_names_the_next_run(world):
    services, _, _ = world
    state = services.scheduler.state("prod")
    assert state.last is None
    assert state.next_run is not None
    assert (state.next_run.hour, state.next_run.minute) == (2, 0)
