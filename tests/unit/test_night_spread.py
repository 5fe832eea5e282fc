"""The nightly timer spreads its environments' backups over a window: each at an offset from its id, the
same every night; 0 (or a run by hand) starts them all at once."""

from datetime import UTC, date, datetime, timedelta

from devhost.timers import timer_request
from functions.schedules import run_by_hand
from shared.adapters.queues import MemoryWorkQueue
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import SYSTEM
from shared.domain.backups import Tier
from shared.schedules.service import spread_offset
from tests.support.memory import ManualClock, memory_services

NIGHT = date(2026, 11, 9)
TWO_AM = datetime(2026, 11, 9, 2, tzinfo=UTC)


def world(spread_minutes: int, environments: int = 40):
    clock = ManualClock(TWO_AM)
    queues: dict[str, MemoryWorkQueue] = {}
    services = memory_services(clock, queues=queues, nightly_spread_minutes=spread_minutes)
    for n in range(environments):
        body = EnvironmentBody.model_validate(
            {
                "namespace": "ns",
                "appName": "app",
                "displayName": f"env {n}",
                "state": "Running",
                "database": {"host": "h", "database": f"d{n}", "user": "u"},
                "files": {"container": "files"},
            }
        )
        services.environments.put(f"env-{n:03d}", body.to_registration(), SYSTEM)
    return services, queues.setdefault("scheduled-backups", MemoryWorkQueue()), clock


def delays(queue: MemoryWorkQueue) -> dict[str, int]:
    return {message.body["environmentId"]: message.delay_seconds for message in queue.sent}


def test_the_nightly_backups_start_spread_over_the_window_each_at_its_own_stable_offset():
    services, queue, clock = world(spread_minutes=60)
    services.scheduler.fan_out(Tier.NIGHTLY, TWO_AM)
    first = delays(queue)
    assert len(first) == 40
    assert all(0 <= delay < 3600 for delay in first.values())
    assert len(set(first.values())) > 30  # not 40 backups at 02:00:00
    assert max(first.values()) - min(first.values()) > 1800  # over the window, not bunched
    assert first["env-007"] == int(spread_offset("env-007", timedelta(minutes=60)).total_seconds())

    queue.clear()
    clock.now = TWO_AM + timedelta(days=1)
    services.scheduler.fan_out(Tier.NIGHTLY, clock.now)
    assert delays(queue) == first  # the same offsets the next night


def test_a_late_timer_starts_what_is_past_its_offset_at_once():
    services, queue, clock = world(spread_minutes=60)
    clock.now = TWO_AM + timedelta(minutes=30)
    services.scheduler.fan_out(Tier.NIGHTLY, TWO_AM)
    for environment_id, delay in delays(queue).items():
        offset = spread_offset(environment_id, timedelta(minutes=60)).total_seconds()
        assert delay == max(0, int(offset) - 1800)


def test_no_spread_and_a_run_by_hand_start_everything_at_once():
    services, queue, _ = world(spread_minutes=0)
    services.scheduler.fan_out(Tier.NIGHTLY, TWO_AM)
    assert set(delays(queue).values()) == {0}
    services, queue, _ = world(spread_minutes=60)
    services.scheduler.fan_out(Tier.NIGHTLY, TWO_AM, spread=False)
    assert set(delays(queue).values()) == {0}


def test_a_timer_without_a_schedule_status_was_run_by_hand():
    assert run_by_hand(timer_request(past_due=False))  # devhost fire
    assert not run_by_hand(timer_request(past_due=False, next_due=TWO_AM))  # the schedule
