"""Back to any minute, on the twins (MemoryPointInTime, the capture use case): a backup of the past holds the
database and the file documents as they were at its instant and restores like any other; the recovery window
through the API; a restore to a point in time end to end, with its refusals and its dry run; and no temporary
instance left running after a cancel, a failure, or a worker that died."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.adapters.cloudevents import decode
from shared.adapters.pointintime import Gap, PointInTimeError
from shared.bootstrap import install_services
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus, Tier
from shared.domain.environments import EnvironmentState, PointInTime
from shared.domain.events import EventType
from shared.domain.operations import OperationStatus
from shared.errors import Conflict, Unprocessable
from tests.support.core import CoreWorld, TwinApp
from tests.support.functions import call

ADA = Principal(id="ada", name="Ada")
MINUTES = 60


class Crash(BaseException):
    """The worker process dies here: nothing after it runs, no clean-up either."""


@pytest.fixture
def world():
    world = CoreWorld(development_mode=True)
    install_services(world.services)
    yield world
    install_services(None)


def history(world: CoreWorld, app: TwinApp) -> list[tuple[datetime, dict, dict]]:
    """Three moments of an app ten minutes apart, each archived and captured: (instant, tables, files by MD5).
    Rows and file documents are added and removed between them."""
    moments = []

    def moment() -> None:
        app.capture_files()
        app.archive()
        moments.append((world.clock.now, app.contents(), app.referenced_files()))
        world.clock.advance(10 * MINUTES)

    moment()
    app.add_customers("Grace", "Edsger")
    first = app.add_document(b"the first contract")
    moment()
    app.remove_document(first)
    app.add_document(b"the second contract")
    app.add_customers("Barbara")
    moment()
    world.point_in_time.archived_until(app.server, world.clock.now)  # the WAL reaches now
    return moments


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def backup_as_of(world: CoreWorld, app: TwinApp, instant: datetime):
    backup = world.services.backups.request(app.environment_id, ADA, point_in_time=instant)
    world.settle(str(backup.operation_id))
    return world.services.backup_catalog.get(app.environment_id, backup.id)


def restore(world: CoreWorld, backup, target: TwinApp):
    operation = world.services.restores.request(backup.environment_id, backup.id, target.environment_id, ADA)
    return world.settle(operation.id)


def to_time(world: CoreWorld, source: TwinApp, instant: datetime, target: TwinApp):
    return world.services.restores.request_to_time(source.environment_id, instant, target.environment_id, ADA)


# -- a backup of the past --------------------------------------------------------------------------------------


def test_a_backup_of_the_past_holds_the_state_at_its_instant_and_restores(world):
    source = world.app(point_in_time=True, documents=2, customers=2)
    moments = history(world, source)
    target = world.app(namespace=source.namespace, state="Stopped")
    for instant, tables, files in moments:
        backup = backup_as_of(world, source, instant + timedelta(minutes=5))
        assert (backup.status, backup.tier, backup.point_in_time) == (
            BackupStatus.FINISHED,
            Tier.POINT_IN_TIME,
            instant + timedelta(minutes=5),
        ), backup.status_message
        assert backup.file_count == len(files)
        done = restore(world, backup, target)
        assert done.status is OperationStatus.FINISHED, done.error
        assert target.contents() == tables
        assert target.stored_files() == files
    assert world.point_in_time.running() == set()  # every temporary instance was stopped


def test_the_backup_view_says_its_instant_and_the_activity_log_too(world):
    source = world.app(point_in_time=True)
    instant, _, _ = history(world, source)[1]
    status, _, document = call(
        "create_backup",
        "POST",
        f"environments/{source.environment_id}/backups",
        route={"env": source.environment_id},
        body={"pointInTime": instant.isoformat(), "comment": "before the bulk change"},
    )
    assert status == 202, document
    assert (document["tier"], at(document["pointInTime"])) == ("point-in-time", instant)
    world.run()
    backup = world.services.backup_catalog.get(source.environment_id, document["id"])
    assert backup.status is BackupStatus.FINISHED
    entries, _ = world.services.activity.page(source.environment_id, limit=1, continuation=None)
    assert f"as of {instant:%Y-%m-%d %H:%M:%S} UTC finished" in entries[0].message


def test_a_file_document_never_captured_is_a_missing_file_as_today(world):
    source = world.app(point_in_time=True, documents=1)
    source.capture_files()
    source.archive()
    world.clock.advance(10 * MINUTES)
    fleeting = source.add_document(b"created and deleted between two captures")
    source.archive()
    instant = world.clock.now
    world.clock.advance(10 * MINUTES)
    source.remove_document(fleeting)
    source.capture_files()
    source.archive()
    backup = backup_as_of(world, source, instant)
    assert backup.status is BackupStatus.FINISHED
    assert (backup.missing_files, backup.missing_file_uuids) == (1, (fleeting,))


def test_a_backup_of_the_past_is_refused_outside_the_window_and_without_an_archive(world):
    source = world.app(point_in_time=True)
    plain = world.app()
    before = world.clock.now - timedelta(days=1)
    with pytest.raises(Unprocessable) as outside:
        world.services.backups.request(source.environment_id, ADA, point_in_time=before)
    assert outside.value.code == "instant_outside_window"
    assert "outside the recovery window" in outside.value.detail
    assert at(outside.value.extensions["window"]["earliest"]) == world.clock.now
    with pytest.raises(Conflict) as unarchived:
        world.services.backups.request(plain.environment_id, ADA, point_in_time=world.clock.now)
    assert unarchived.value.code == "point_in_time_not_configured"
    status, _, problem = call(
        "create_backup",
        "POST",
        f"environments/{source.environment_id}/backups",
        route={"env": source.environment_id},
        body={"pointInTime": before.isoformat()},
    )
    assert (status, problem["code"]) == (422, "instant_outside_window")
    assert at(problem["window"]["latest"]) == world.clock.now
    assert list(world.services.backup_catalog.of_environment(source.environment_id)) == []


# -- the window ----------------------------------------------------------------------------------------------


def test_the_recovery_window_through_the_api(world):
    source = world.app(point_in_time=True)
    start = world.clock.now
    world.clock.advance(30 * MINUTES)
    source.archive()
    latest = world.clock.now
    gap = Gap(
        start + timedelta(minutes=10), start + timedelta(minutes=12), "WAL segment 00000001000000000000000A missing"
    )
    world.point_in_time.gaps[source.server] = [gap]
    world.clock.advance(45)
    status, _, window = call(
        "get_recovery_window",
        "GET",
        f"environments/{source.environment_id}/recovery-window",
        route={"env": source.environment_id},
    )
    assert status == 200, window
    assert (at(window["earliest"]), at(window["latest"])) == (start, latest)
    ((shown,),) = (window["gaps"],)
    assert (at(shown["start"]), at(shown["end"]), shown["reason"]) == (gap.start, gap.end, gap.reason)
    assert window["recoveryPointSeconds"] == 45
    assert window["server"] == source.server

    plain = world.app()
    status, _, problem = call(
        "get_recovery_window",
        "GET",
        f"environments/{plain.environment_id}/recovery-window",
        route={"env": plain.environment_id},
    )
    assert (status, problem["code"]) == (409, "point_in_time_not_configured")


# -- a restore to a point in time ----------------------------------------------------------------------------


def test_a_restore_to_a_point_in_time_end_to_end(world):
    source = world.app(point_in_time=True, documents=2, customers=2)
    moments = history(world, source)
    target = world.app(namespace=source.namespace, state="Stopped", documents=1)
    instant, tables, files = moments[1]
    status, headers, document = call(
        "restore_to_time",
        "POST",
        f"environments/{source.environment_id}/restore-to-time",
        route={"env": source.environment_id},
        body={"pointInTime": instant.isoformat(), "targetEnvironment": target.environment_id},
    )
    assert status == 202, document
    assert headers["Location"] == f"/api/restores/{document['id']}"
    assert world.services.environments.get(target.environment_id).state is EnvironmentState.RESTORING
    done = world.settle(document["id"])
    assert done.status is OperationStatus.FINISHED, done.error
    assert target.contents() == tables
    assert target.stored_files() == files
    assert world.services.environments.get(target.environment_id).state is EnvironmentState.STOPPED
    past = world.services.backup_catalog.get(source.environment_id, str(done.backup_id))
    assert (past.tier, past.point_in_time, past.in_use_by) == (Tier.POINT_IN_TIME, instant, ())
    pre_restore = world.services.backup_catalog.get(
        target.environment_id, done.output("pre_restore_backup", "preRestoreSnapshotId")
    )
    assert pre_restore.status is BackupStatus.FINISHED
    entries, _ = world.services.activity.page(target.environment_id, limit=1, continuation=None)
    assert (entries[0].action.value, entries[0].outcome.value) == ("restore", "FINISHED")
    assert f"{source.environment_id} as of {instant:%Y-%m-%d %H:%M:%S} UTC" in entries[0].message
    _, _, shown = call("get_restore", "GET", f"restores/{done.id}", route={"restoreId": done.id})
    assert at(shown["details"]["pointInTime"]) == instant
    assert world.point_in_time.running() == set()


def test_a_restore_to_a_point_in_time_announces_its_instant(world):
    source = world.app(point_in_time=True)
    instant = history(world, source)[1][0]
    target = world.app(namespace=source.namespace, state="Stopped")
    operation = to_time(world, source, instant, target)
    events = world.queues["events"]
    events.sent.clear()
    world.settle(operation.id)
    sent = [decode(message.body["event"]) for message in events.sent]
    finished = [event for event in sent if event.type is EventType.RESTORE_FINISHED]
    assert len(finished) == 1
    assert at(finished[0].data["pointInTime"]) == instant
    (made,) = [
        event for event in sent if event.type is EventType.BACKUP_FINISHED and event.data["tier"] == "point-in-time"
    ]
    assert at(made.data["pointInTime"]) == instant


def test_a_restore_into_the_environment_itself_goes_back_in_time(world):
    source = world.app(point_in_time=True, state="Stopped", documents=2)
    moments = history(world, source)
    instant, tables, files = moments[0]
    done = world.settle(to_time(world, source, instant, source).id)
    assert done.status is OperationStatus.FINISHED, done.error
    assert source.contents() == tables
    assert source.stored_files() == files


def test_a_restore_to_a_point_in_time_is_refused_before_anything_is_done(world):
    source = world.app(point_in_time=True, namespace="ns")
    history(world, source)
    target = world.app(namespace="ns", state="Stopped")
    elsewhere = world.app(namespace="other", state="Stopped")
    running = world.app(namespace="ns", state="Running")
    plain = world.app(namespace="ns")
    inside = world.clock.now - timedelta(minutes=15)
    refusals = [
        (source, world.clock.now + timedelta(hours=1), target, Unprocessable, "instant_outside_window"),
        (source, inside, elsewhere, Unprocessable, "cross_namespace"),
        (source, inside, running, Conflict, "environment_not_stopped"),
        (plain, inside, target, Conflict, "point_in_time_not_configured"),
    ]
    for from_app, instant, into, error, code in refusals:
        with pytest.raises(error) as refused:
            to_time(world, from_app, instant, into)
        assert refused.value.code == code
    for app in (target, elsewhere, running):
        assert world.services.environments.get(app.environment_id).active_restore_id is None
    assert list(world.services.backup_catalog.of_environment(source.environment_id)) == []
    assert world.queue.sent == []

    status, _, problem = call(
        "restore_to_time",
        "POST",
        f"environments/{source.environment_id}/restore-to-time",
        route={"env": source.environment_id},
        body={
            "pointInTime": (world.clock.now - timedelta(days=2)).isoformat(),
            "targetEnvironment": target.environment_id,
        },
    )
    assert (status, problem["code"], problem["check"]) == (422, "instant_outside_window", "point_in_time")
    assert "outside the recovery window" in problem["detail"]


def test_a_dry_run_answers_the_plan_and_changes_nothing(world):
    source = world.app(point_in_time=True)
    history(world, source)
    target = world.app(namespace=source.namespace, state="Running")
    instant = world.clock.now - timedelta(minutes=15)
    status, _, plan = call(
        "restore_to_time",
        "POST",
        f"environments/{source.environment_id}/restore-to-time",
        route={"env": source.environment_id},
        body={"pointInTime": instant.isoformat(), "targetEnvironment": target.environment_id, "dryRun": True},
    )
    assert status == 200, plan
    checks = {check["name"]: check["status"] for check in plan["checks"]}
    assert checks["point_in_time"] == "pass"
    assert checks["target_state"] == "fail"  # Running: Stop would be needed
    assert (plan["outcome"], plan["stopNeeded"], at(plan["pointInTime"])) == ("fail", True, instant)
    assert plan["latest"] is not None
    assert world.services.environments.get(target.environment_id).state is EnvironmentState.RUNNING
    assert list(world.services.backup_catalog.of_environment(source.environment_id)) == []
    assert world.queue.sent == []


# -- nothing left running ------------------------------------------------------------------------------------


def test_a_cancelled_backup_of_the_past_releases_its_temporary_instance(world):
    source = world.app(point_in_time=True)
    instant = history(world, source)[1][0]
    seen = []

    def cancel_it(snapshot) -> None:  # the instance is up and being read: the user cancels
        seen.extend(world.point_in_time.running())
        backup = next(iter(world.services.backup_catalog.processing()))
        world.services.backups.cancel(source.environment_id, backup.id, ADA)

    world.services.backup_steps.hooks.after_snapshot_exported = cancel_it
    backup = backup_as_of(world, source, instant)
    assert backup.status is BackupStatus.CANCELLED
    assert len(seen) == 1
    assert world.point_in_time.running() == set()


def test_a_cancelled_restore_to_a_point_in_time_cancels_its_backup_and_releases_the_instance(world):
    source = world.app(point_in_time=True)
    instant = history(world, source)[1][0]
    target = world.app(namespace=source.namespace, state="Stopped")
    operation = to_time(world, source, instant, target)
    seen = []

    def cancel_the_restore(snapshot) -> None:  # while the backup of the instant reads the temporary instance
        seen.extend(world.point_in_time.running())
        world.services.restores.cancel(operation.id, ADA)
        world.services.operations.handle(operation.id)  # another worker runs the restore's undo meanwhile

    world.services.backup_steps.hooks.after_snapshot_exported = cancel_the_restore
    done = world.settle(operation.id)
    world.run()
    assert done.status is OperationStatus.CANCELLED
    assert len(seen) == 1
    assert world.point_in_time.running() == set()
    past = world.services.backup_catalog.get(source.environment_id, str(done.backup_id))
    assert past.status is BackupStatus.CANCELLED
    assert past.in_use_by == ()
    assert world.services.environments.get(target.environment_id).state is EnvironmentState.STOPPED


def test_a_failed_backup_of_the_past_fails_its_restore_and_leaves_nothing_running(world):
    source = world.app(point_in_time=True)
    instant = history(world, source)[1][0]
    target = world.app(namespace=source.namespace, state="Stopped")
    before_tables, before_files = target.contents(), target.stored_files()
    world.point_in_time.fail_with[source.server] = "recovery ended before the target time"
    done = world.settle(to_time(world, source, instant, target).id)
    assert done.status is OperationStatus.FAILED
    assert "recovery ended before the target time" in done.error
    assert (target.contents(), target.stored_files()) == (before_tables, before_files)
    assert world.services.environments.get(target.environment_id).state is EnvironmentState.STOPPED
    assert world.point_in_time.running() == set()


class Killable:
    """The archive as a killed process sees it: a Crash runs no clean-up, so the temporary instance stays."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.dead = []  # the contexts a Crash left: kept, so that no finaliser cleans up after a dead process

    def window(self, server):  # type: ignore[no-untyped-def]
        return self.inner.window(server)

    def release(self, instance) -> None:  # type: ignore[no-untyped-def]
        self.inner.release(instance)

    @contextmanager
    def as_of(self, *args, **options):  # type: ignore[no-untyped-def]
        context = self.inner.as_of(*args, **options)
        connection = context.__enter__()
        try:
            yield connection
        except Crash:
            self.dead.append(context)
            raise  # the process is gone: nothing stops the instance
        except BaseException as error:
            if not context.__exit__(type(error), error, error.__traceback__):
                raise
        else:
            context.__exit__(None, None, None)


def test_the_reaper_releases_the_instance_a_dead_worker_left(world):
    source = world.app(point_in_time=True)
    instant = history(world, source)[1][0]
    steps = world.services.backup_steps
    steps._point_in_time = Killable(world.point_in_time)

    def die(snapshot) -> None:
        raise Crash

    steps.hooks.after_snapshot_exported = die
    backup = world.services.backups.request(source.environment_id, ADA, point_in_time=instant)
    with pytest.raises(Crash):
        world.simulator.deliver_one()
    left = world.point_in_time.running()
    assert len(left) == 1  # the dead worker's instance
    operation = world.services.operations.get(str(backup.operation_id))
    assert operation.step("dump").output["temporaryInstance"]["directory"] == next(iter(left)).directory

    world.simulator.pending.clear()  # its watchdog is lost too: only the reaper is left
    world.queue.sent.clear()
    world.clock.advance(10 * MINUTES)
    report = world.services.reaper.reap()
    assert [woken.id for woken in report.woken] == [operation.id]
    assert world.point_in_time.running() == set()  # released before the operation was woken

    steps.hooks.after_snapshot_exported = None
    world.settle(operation.id)  # the resumed step starts over and finishes
    assert world.services.backup_catalog.get(source.environment_id, backup.id).status is BackupStatus.FINISHED
    assert world.point_in_time.running() == set()


def test_a_repeat_of_the_dump_after_a_crash_releases_the_instance_first(world):
    source = world.app(point_in_time=True)
    instant = history(world, source)[1][0]
    steps = world.services.backup_steps
    steps._point_in_time = Killable(world.point_in_time)
    crashes = []

    def die_once(snapshot) -> None:
        if not crashes:
            crashes.append(world.point_in_time.running())
            raise Crash

    steps.hooks.after_snapshot_exported = die_once
    backup = world.services.backups.request(source.environment_id, ADA, point_in_time=instant)
    with pytest.raises(Crash):
        world.simulator.deliver_one()
    assert len(world.point_in_time.running()) == 1
    world.settle(str(backup.operation_id))  # the watchdog resumes it: the repeat releases the old instance
    assert world.services.backup_catalog.get(source.environment_id, backup.id).status is BackupStatus.FINISHED
    assert world.point_in_time.running() == set()


def test_the_instant_is_kept_in_utc(world):
    source = world.app(point_in_time=True)
    instant = history(world, source)[1][0]
    local = instant.astimezone(timezone(timedelta(hours=2)))
    backup = backup_as_of(world, source, local)
    assert backup.point_in_time == instant
    assert backup.point_in_time.tzinfo == UTC


class Unreachable:
    """An archive whose listing fails (storage down)."""

    def window(self, server: str):  # type: ignore[no-untyped-def]
        raise PointInTimeError(f"The archive of {server} could not be listed: connection refused", transient=True)


def test_an_archive_that_cannot_be_read_answers_503_not_500(world):
    source = world.app(point_in_time=True)
    target = world.app(namespace=source.namespace, state="Stopped")
    world.services.past.source = Unreachable()  # type: ignore[assignment]
    route = {"env": source.environment_id}
    status, _, problem = call("get_recovery_window", "GET", "x", route=route)
    assert (status, problem["code"]) == (503, "archive_unavailable")
    assert "connection refused" in problem["detail"]
    body = {"pointInTime": world.clock.now.isoformat(), "targetEnvironment": target.environment_id}
    for dry_run in (True, False):
        status, _, problem = call("restore_to_time", "POST", "x", route=route, body={**body, "dryRun": dry_run})
        assert (status, problem["code"]) == (503, "archive_unavailable")
    status, _, problem = call("create_backup", "POST", "x", route=route, body={"pointInTime": body["pointInTime"]})
    assert (status, problem["code"]) == (503, "archive_unavailable")
    assert world.services.environments.get(target.environment_id).state is EnvironmentState.STOPPED


def test_a_backup_of_the_past_is_not_the_environments_newest_recovery_point(world):
    source = world.app(point_in_time=True, documents=1, customers=1)
    history(world, source)
    nightly = world.services.backups.request(source.environment_id, ADA)
    world.settle(str(nightly.operation_id))
    world.clock.advance(27 * 60 * MINUTES)  # a night missed: the nightly is now stale
    world.point_in_time.archived_until(source.server, world.clock.now)
    of_the_past = backup_as_of(world, source, world.clock.now - timedelta(minutes=1))
    assert of_the_past.status is BackupStatus.FINISHED, of_the_past.status_message

    (freshness,) = [item for item in world.services.health.freshness() if item.environment == source.environment_id]
    assert freshness.status == "stale"  # the backup of the past was made now, of data that is not newer
    assert world.services.backup_catalog.latest_recovery_point(source.environment_id).id == nightly.id
    world.services.drills.run_scheduled()
    drilled = world.services.backup_catalog.get(source.environment_id, nightly.id)
    assert drilled.verification is not None  # the weekly drill proves the nightly, not the backup of the past


def test_pruning_keeps_each_archive_for_its_longest_window_and_for_a_backup_of_the_past_being_made(world):
    short = world.app(point_in_time=True)
    server = short.server
    world.services.environment_catalog.update(
        short.environment_id, lambda environment: replace(environment, point_in_time=PointInTime(server, 2))
    )
    long = world.app(point_in_time=True)  # the default window, 7 days
    world.services.environment_catalog.update(
        long.environment_id, lambda environment: replace(environment, point_in_time=PointInTime(server, 7))
    )
    now = world.clock.now
    for days in (10, 8, 7, 6.5):
        world.point_in_time.base_backup(server, now - timedelta(days=days))
    world.point_in_time.capture(server, long.connection, now - timedelta(days=10))  # its database since then
    world.point_in_time.archived_until(server, now)
    being_made = world.services.backups.request(long.environment_id, ADA, point_in_time=now - timedelta(days=6.9))
    world.clock.advance(timedelta(days=1).total_seconds())  # the window moved past its instant meanwhile

    report = world.services.pruning.prune()
    removed = tuple((now - timedelta(days=days)).isoformat() for days in (10, 8))
    assert report.archives[server].base_backups == removed  # the base backup before 6.9 days ago is kept
    assert world.point_in_time.window(server).earliest == now - timedelta(days=7)
    world.settle(str(being_made.operation_id))
    made = world.services.backup_catalog.get(long.environment_id, being_made.id)
    assert made.status is BackupStatus.FINISHED

    report = world.services.pruning.prune()
    assert report.archives[server].base_backups == ((now - timedelta(days=7)).isoformat(),)  # now it can go
    assert world.services.pruning.prune().archives[server].base_backups == ()
