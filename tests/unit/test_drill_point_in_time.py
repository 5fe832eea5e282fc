"""Drills prove the recovery window (issue 26): the weekly run drills each environment's newest backup and,
for one with point-in-time recovery, a random instant of its window (a drill of the backup of that instant,
made as the drill's first step: docs/decisions/0010). On the twins; the random source seeded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random

from shared.adapters.cloudevents import decode
from shared.adapters.pointintime import Gap, PointInTimeError, RecoveryWindow
from shared.backups.layout import read_row_counts
from shared.contracts.webhooks import VerificationEventData
from shared.domain.backups import BackupStatus, Tier
from shared.domain.events import EventType
from shared.domain.operations import OperationStatus
from shared.domain.verification import CheckStatus, LastDrill, VerificationStatus
from shared.drills.service import random_instant
from shared.drills.steps import POINT_IN_TIME
from tests.support.core import CoreWorld, TwinApp
from tests.unit.test_point_in_time import ADA, Unreachable, history
from tests.unit.test_point_in_time import world as world  # the fixture (services installed)

SEED = 26


def nightly(world: CoreWorld, app: TwinApp):
    backup = world.services.backups.request(app.environment_id, ADA)
    world.settle(str(backup.operation_id))
    return world.services.backup_catalog.get(app.environment_id, backup.id)


def of_the_past(world: CoreWorld, app: TwinApp):
    return [
        backup
        for backup in world.services.backup_catalog.of_environment(app.environment_id)
        if backup.tier is Tier.POINT_IN_TIME
    ]


def state_at(moments, instant: datetime):
    """The tables and file documents of the last moment at or before ``instant``."""
    _, tables, files = [moment for moment in moments if moment[0] <= instant][-1]
    return tables, files


def test_the_weekly_run_drills_the_newest_backup_and_a_random_instant_of_the_window(world):
    source = world.app(point_in_time=True, documents=2, customers=2)
    moments = history(world, source)
    newest = nightly(world, source)
    window = world.point_in_time.window(source.server)
    world.services.drills.rng = Random(SEED)
    events = world.queues["events"]
    events.sent.clear()

    scheduled = world.services.drills.run_scheduled()
    world.run()

    expected = random_instant(window, Random(SEED))  # seeded: the same instant every run
    assert scheduled.started == (source.environment_id,)
    assert scheduled.instants == ((source.environment_id, expected),)
    assert scheduled.instants_skipped == ()
    assert window.earliest <= expected <= window.latest
    drilled = world.services.backup_catalog.get(source.environment_id, newest.id)
    assert drilled.verification.status is VerificationStatus.PASSED
    (past,) = of_the_past(world, source)
    assert (past.status, past.point_in_time, past.in_use_by) == (BackupStatus.FINISHED, expected, ())
    verification = past.verification
    assert verification is not None
    assert verification.status is VerificationStatus.PASSED
    checks = {check.name: check.status for check in verification.checks}
    assert checks == {
        "checksums": CheckStatus.PASSED,
        "load": CheckStatus.PASSED,
        "row_counts": CheckStatus.PASSED,
        "file_references": CheckStatus.PASSED,
        "assertions": CheckStatus.SKIPPED,  # the twin app has no verificationQueries
    }
    # the data drilled is the environment's at that instant: its rows and the file documents referred to then
    tables, files = state_at(moments, expected)
    assert read_row_counts(world.services.stores.backups, past) == {table: len(rows) for table, rows in tables.items()}
    assert past.file_count == len(files)
    drill = world.services.drills.get(verification.operation_id)
    assert drill.status is OperationStatus.FINISHED
    assert datetime.fromisoformat(drill.parameters[POINT_IN_TIME]) == expected
    # where drill results are shown: the environment's last drill, the activity log, the events
    last = world.services.environments.get(source.environment_id).last_drill
    assert last.status is VerificationStatus.PASSED
    assert last.point_in_time == (expected if last.backup_id == past.id else None)  # which instant it proved
    assert LastDrill.from_dict(last.to_dict()) == last
    entries, _ = world.services.activity.page(source.environment_id, limit=20, continuation=None)
    (logged,) = [entry for entry in entries if entry.action.value == "verify" and entry.backup_id == past.id]
    assert logged.outcome.value == "FINISHED"
    assert f"as of {expected:%Y-%m-%d %H:%M:%S} UTC" in logged.message
    sent = [decode(message.body["event"]) for message in events.sent]
    passed = [event for event in sent if event.type is EventType.VERIFICATION_PASSED]
    assert {event.data["backupId"] for event in passed} == {newest.id, past.id}
    for event in passed:  # as OpenAPI describes them; the drill of the instant names it
        VerificationEventData.model_validate(event.data)
    proved = {event.data["backupId"]: event.data.get("pointInTime") for event in passed}
    assert proved == {newest.id: None, past.id: expected.isoformat()}
    assert world.point_in_time.running() == set()  # the temporary instance was stopped


def test_the_instant_proved_is_random_across_runs_and_stays_inside_the_window(world):
    source = world.app(point_in_time=True)
    history(world, source)
    window = world.point_in_time.window(source.server)
    world.services.drills.rng = Random(SEED)
    proved = set()
    for _ in range(3):
        scheduled = world.services.drills.run_scheduled()
        world.run()
        ((_, instant),) = scheduled.instants
        proved.add(instant)
        assert window.refusal(instant) is None
    assert len(proved) == 3
    assert {backup.verification.status for backup in of_the_past(world, source)} == {VerificationStatus.PASSED}


def test_an_environment_without_point_in_time_only_gets_the_regular_drill(world):
    plain = world.app()
    newest = nightly(world, plain)
    scheduled = world.services.drills.run_scheduled()
    world.run()
    assert scheduled.started == (plain.environment_id,)
    assert (scheduled.instants, scheduled.instants_skipped) == ((), ())
    assert [backup.id for backup in world.services.backup_catalog.of_environment(plain.environment_id)] == [newest.id]
    assert world.services.backup_catalog.get(plain.environment_id, newest.id).verification.status is (
        VerificationStatus.PASSED
    )


class OneServerDown:
    """The archive of one server cannot be listed; the others answer."""

    def __init__(self, world: CoreWorld, server: str) -> None:
        self._archive = world.point_in_time
        self._server = server

    def window(self, server: str) -> RecoveryWindow:
        if server == self._server:
            raise PointInTimeError(f"The archive of {server} could not be listed: connection refused", transient=True)
        return self._archive.window(server)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._archive, name)


def test_an_archive_error_skips_the_instant_with_the_reason_and_the_others_go_on(world):
    down = world.app(point_in_time=True)
    up = world.app(point_in_time=True)
    for app in (down, up):
        history(world, app)
        nightly(world, app)
    world.services.past.source = OneServerDown(world, down.server)  # type: ignore[assignment]
    world.services.drills.rng = Random(SEED)

    scheduled = world.services.drills.run_scheduled()
    world.run()

    assert set(scheduled.started) == {down.environment_id, up.environment_id}  # the regular drills, both
    ((skipped, why),) = scheduled.instants_skipped
    assert skipped == down.environment_id
    assert "cannot be read just now" in why
    assert "connection refused" in why
    assert [environment for environment, _ in scheduled.instants] == [up.environment_id]
    assert of_the_past(world, down) == []
    (past,) = of_the_past(world, up)
    assert past.verification.status is VerificationStatus.PASSED


def test_no_window_and_a_window_all_gaps_and_no_archive_are_skipped_with_the_reason(world):
    gapped = world.app(point_in_time=True)
    history(world, gapped)
    window = world.point_in_time.window(gapped.server)
    world.point_in_time.gaps[gapped.server] = [Gap(window.earliest, window.latest, "segment 0000000100000000 lost")]
    scheduled = world.services.drills.run_scheduled()
    ((_, why),) = scheduled.instants_skipped
    assert "falls in a gap of the window" in why
    assert "segment 0000000100000000 lost" in why

    world.services.past.source = Unreachable()  # type: ignore[assignment]
    ((_, why),) = world.services.drills.run_scheduled().instants_skipped
    assert "connection refused" in why

    world.services.past.source = None
    ((_, why),) = world.services.drills.run_scheduled().instants_skipped
    assert "not set up on this service" in why
    assert of_the_past(world, gapped) == []


def test_a_backup_of_the_past_that_fails_fails_the_drill_of_the_instant_naming_why(world):
    source = world.app(point_in_time=True)
    history(world, source)
    world.point_in_time.fail_with[source.server] = "recovery ended before the target time"
    scheduled = world.services.drills.run_scheduled()
    world.run()
    ((_, instant),) = scheduled.instants
    (past,) = of_the_past(world, source)
    assert past.status is BackupStatus.FAILED
    assert past.verification.status is VerificationStatus.FAILED
    assert "recovery ended before the target time" in past.verification.checks[-1].detail
    assert past.in_use_by == ()
    entries, _ = world.services.activity.page(source.environment_id, limit=20, continuation=None)
    (logged,) = [entry for entry in entries if entry.action.value == "verify"]
    assert logged.outcome.value == "FAILED"
    assert f"as of {instant:%Y-%m-%d %H:%M:%S} UTC" in logged.message
    assert world.point_in_time.running() == set()


def test_a_cancelled_drill_of_an_instant_cancels_the_backup_being_made(world):
    source = world.app(point_in_time=True)
    instant = history(world, source)[1][0]
    drill = world.services.drills.request_to_time(source.environment_id, instant, ADA)

    def cancel_the_drill(snapshot) -> None:  # while the backup of the instant reads the temporary instance
        world.services.drills.cancel(drill.id, ADA)
        world.services.operations.handle(drill.id)

    world.services.backup_steps.hooks.after_snapshot_exported = cancel_the_drill
    done = world.settle(drill.id)
    world.run()
    assert done.status is OperationStatus.CANCELLED
    past = world.services.backup_catalog.get(source.environment_id, str(done.backup_id))
    assert (past.status, past.verification, past.in_use_by) == (BackupStatus.CANCELLED, None, ())
    assert world.point_in_time.running() == set()


def test_a_random_instant_is_uniform_over_the_window_and_never_in_a_gap():
    start = datetime(2026, 12, 7, 10, 0, 0, 250000, tzinfo=UTC)
    gap = Gap(start + timedelta(minutes=10), start + timedelta(minutes=20), "missing WAL")
    window = RecoveryWindow(start, start + timedelta(minutes=30), (gap,))
    rng = Random(SEED)
    drawn = [random_instant(window, rng) for _ in range(600)]
    assert all(instant is not None and window.refusal(instant) is None for instant in drawn)
    assert all(instant.microsecond == 0 for instant in drawn)  # whole seconds, inside the window
    before = sum(instant < gap.start for instant in drawn)
    assert 240 <= before <= 360  # the two halves alike: 300 expected each
    assert random_instant(RecoveryWindow(None, None), rng) is None
    tiny = RecoveryWindow(start, start + timedelta(milliseconds=500))
    assert random_instant(tiny, rng) is None  # no whole second in it


def test_the_environment_shows_the_instant_its_last_drill_proved(world):
    source = world.app(point_in_time=True, documents=1)
    instant = history(world, source)[1][0]
    drill = world.services.drills.request_to_time(source.environment_id, instant, ADA)
    assert world.settle(drill.id).status is OperationStatus.FINISHED
    world.run()
    last = world.services.environments.get(source.environment_id).last_drill
    assert (last.status, last.point_in_time) == (VerificationStatus.PASSED, instant)
    assert LastDrill.from_dict(last.to_dict()) == last

    regular = world.services.drills.request(source.environment_id, nightly(world, source).id, ADA)
    assert world.settle(regular.id).status is OperationStatus.FINISHED
    world.run()
    assert world.services.environments.get(source.environment_id).last_drill.point_in_time is None
