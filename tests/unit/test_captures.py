"""Captures of file documents on the twins: a run copies what the database newly refers to and nothing twice,
notes what went, tries a missing blob again, captures only environments with point-in-time recovery; a restore
to an instant gets the file documents captured by then; pruning keeps what an instant of the window refers to."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.postgres.memory import FILE_DOCUMENTS
from shared.backups.files import MissingFileDocument
from shared.backups.layout import FileEntry, content_object
from shared.captures.service import LATE_RUN, longest_interval
from shared.domain.environments import PointInTime
from shared.errors import Conflict
from tests.support.core import CoreWorld, TwinApp, md5_hex

MINUTE = 60


@pytest.fixture
def world() -> CoreWorld:
    return CoreWorld(prune_grace_hours=6)


def with_point_in_time(world: CoreWorld, app: TwinApp, window_days: int = 7) -> TwinApp:
    world.services.environment_catalog.update(
        app.environment_id, lambda environment: replace(environment, point_in_time=PointInTime("srv", window_days))
    )
    return app


def capture(world: CoreWorld, app: TwinApp):  # type: ignore[no-untyped-def]
    return world.services.captures.capture(world.services.environment_catalog.get(app.environment_id))


def captures_of(world: CoreWorld, app: TwinApp) -> dict[str, object]:
    return {capture.uuid: capture for capture in world.services.captures.captures(app.environment_id)}


def content_names(world: CoreWorld, app: TwinApp) -> set[str]:
    return {blob.name for blob in world.services.stores.content.list(f"{app.namespace}/")}


def remove_document(app: TwinApp, file_uuid: str) -> None:
    table = app.database.tables[FILE_DOCUMENTS]
    table.rows[:] = [row for row in table.rows if row[1] != file_uuid]
    app.files.pop(file_uuid, None)


def as_of(world: CoreWorld, app: TwinApp, instant: datetime, uuids: list[str]) -> tuple[list[FileEntry], list[str]]:
    missing: list[str] = []
    entries = list(
        world.services.captures.files_as_of(app.environment_id, instant, iter(sorted(uuids)), missing.append)
    )
    return entries, missing


def test_a_run_copies_each_referred_file_document_into_the_content_store_and_records_when(world):
    app = with_point_in_time(world, world.app(documents=3))
    report = capture(world, app)
    assert (report.referred, report.new, report.copied, report.gone, report.missing) == (3, 3, 3, 0, 0)
    captured = captures_of(world, app)
    assert set(captured) == set(app.files)
    for file_uuid, content in app.files.items():
        record = captured[file_uuid]
        assert record.object == content_object(app.namespace, file_uuid, md5_hex(content))
        assert world.services.stores.content.read_bytes(record.object) == content
        assert (record.size, record.md5) == (len(content), md5_hex(content))
        assert record.first_referred == world.clock.now
        assert (record.gone_on, record.last_referred) == (None, None)
    run = world.services.captures.latest_run(app.environment_id)
    assert (run.ran_on, run.referred, run.new) == (world.clock.now, 3, 3)


def test_a_repeat_run_copies_and_writes_nothing(world):
    app = with_point_in_time(world, world.app(documents=3))
    capture(world, app)
    before = captures_of(world, app)
    objects = content_names(world, app)
    world.clock.advance(MINUTE)
    report = capture(world, app)
    assert (report.referred, report.new, report.copied, report.gone) == (3, 0, 0, 0)
    assert captures_of(world, app) == before  # same ETags: not even rewritten
    assert content_names(world, app) == objects


def test_a_file_document_added_later_is_captured_at_its_run(world):
    app = with_point_in_time(world, world.app(documents=2))
    capture(world, app)
    world.clock.advance(MINUTE)
    added = app.add_document(b"written a minute later")
    report = capture(world, app)
    assert (report.new, report.copied) == (1, 1)
    assert captures_of(world, app)[added].first_referred == world.clock.now


def test_a_file_document_no_longer_referred_to_is_marked_gone_and_its_content_stays(world):
    app = with_point_in_time(world, world.app(documents=3))
    capture(world, app)
    first_run = world.clock.now
    world.clock.advance(MINUTE)
    capture(world, app)
    seen_last = world.clock.now
    removed = sorted(app.files)[1]
    remove_document(app, removed)
    world.clock.advance(MINUTE)
    report = capture(world, app)
    assert (report.gone, report.new) == (1, 0)
    captured = captures_of(world, app)
    assert captured[removed].gone_on == world.clock.now
    assert captured[removed].last_referred == seen_last
    assert captured[removed].first_referred == first_run
    assert all(captured[file_uuid].gone_on is None for file_uuid in app.files)
    assert captured[removed].object in content_names(world, app)
    world.clock.advance(MINUTE)
    assert capture(world, app).gone == 0  # gone once, not again


def test_a_file_document_referred_to_again_is_no_longer_gone(world):
    app = with_point_in_time(world, world.app(documents=2))
    capture(world, app)
    file_uuid = sorted(app.files)[0]
    content = app.files[file_uuid]
    row = next(row for row in app.database.tables[FILE_DOCUMENTS].rows if row[1] == file_uuid)
    remove_document(app, file_uuid)
    world.clock.advance(MINUTE)
    capture(world, app)
    app.database.tables[FILE_DOCUMENTS].rows.append(row)  # e.g. the database was restored
    app.files[file_uuid] = content
    world.clock.advance(MINUTE)
    report = capture(world, app)
    assert (report.back, report.new, report.copied) == (1, 0, 0)
    assert captures_of(world, app)[file_uuid].gone_on is None


def test_a_referred_file_document_without_content_is_missing_and_tried_again(world):
    app = with_point_in_time(world, world.app(documents=2))
    late = app.add_document(b"uploaded after its row", upload=False)
    report = capture(world, app)
    assert (report.new, report.missing, report.missing_uuids) == (2, 1, (late,))
    assert late not in captures_of(world, app)
    world.clock.advance(MINUTE)
    app.store.put(app.prefix + late, b"uploaded after its row")
    report = capture(world, app)
    assert (report.new, report.missing) == (1, 0)
    assert world.services.stores.content.read_bytes(captures_of(world, app)[late].object) == b"uploaded after its row"


def test_only_environments_with_point_in_time_recovery_are_captured(world):
    captured = with_point_in_time(world, world.app(documents=2))
    other = world.app(documents=2)
    outcome = world.services.captures.capture_all()
    assert [report.environment_id for report in outcome.reports] == [captured.environment_id]
    assert outcome.failed == {}
    assert captures_of(world, other) == {}
    with pytest.raises(Conflict, match="no point-in-time recovery"):
        capture(world, other)


def test_one_environment_failing_does_not_stop_the_others(world):
    broken = with_point_in_time(world, world.app(documents=1))
    fine = with_point_in_time(world, world.app(documents=2))
    world.services.environment_catalog.update(
        broken.environment_id,
        lambda environment: replace(environment, database=replace(environment.database, database="gone")),
    )
    outcome = world.services.captures.capture_all()
    assert [report.environment_id for report in outcome.reports] == [fine.environment_id]
    assert set(outcome.failed) == {broken.environment_id}
    assert "does not exist" in outcome.failed[broken.environment_id]
    assert set(captures_of(world, fine)) == set(fine.files)


def test_files_as_of_gives_what_was_captured_by_the_instant(world):
    app = with_point_in_time(world, world.app(documents=2))
    slack = world.services.captures.slack
    before_capture = world.clock.now - slack - timedelta(seconds=1)
    capture(world, app)
    captured_on = world.clock.now
    uuids = sorted(app.files)

    entries, missing = as_of(world, app, before_capture, uuids)
    assert (entries, missing) == ([], uuids)

    entries, missing = as_of(world, app, captured_on - slack, uuids)  # created up to a run's interval before
    assert [entry.uuid for entry in entries] == uuids
    assert missing == []
    entries, missing = as_of(world, app, captured_on + timedelta(hours=1), uuids)
    assert missing == []
    records = captures_of(world, app)
    assert entries == [
        FileEntry(u, records[u].size, records[u].md5, records[u].object, records[u].source_etag) for u in uuids
    ]
    assert all(world.services.stores.content.read_bytes(entry.object) == app.files[entry.uuid] for entry in entries)


def test_files_as_of_an_instant_before_a_file_document_went_still_gives_it(world):
    app = with_point_in_time(world, world.app(documents=2))
    capture(world, app)
    then = world.clock.now
    referred_then = sorted(app.files)
    remove_document(app, referred_then[0])
    world.clock.advance(10 * MINUTE)
    capture(world, app)
    assert captures_of(world, app)[referred_then[0]].gone_on == world.clock.now
    entries, missing = as_of(world, app, then, referred_then)
    assert [entry.uuid for entry in entries] == referred_then
    assert missing == []


def test_files_as_of_names_what_was_never_captured_and_refuses_without_a_warning(world):
    app = with_point_in_time(world, world.app(documents=1))
    capture(world, app)
    never = "00000000-0000-0000-0000-000000000000"  # created and deleted between two runs
    uuids = sorted([*app.files, never])
    entries, missing = as_of(world, app, world.clock.now, uuids)
    assert [entry.uuid for entry in entries] == sorted(app.files)
    assert missing == [never]
    with pytest.raises(MissingFileDocument, match=never):
        list(world.services.captures.files_as_of(app.environment_id, world.clock.now, iter(uuids)))


def test_the_slack_is_the_longest_interval_of_the_schedule_and_a_late_run():
    start = datetime(2026, 12, 7, 10, 41, 17, tzinfo=UTC)
    assert longest_interval("0 * * * * *", start) == timedelta(minutes=1)
    assert longest_interval("0 */5 * * * *", start) == timedelta(minutes=5)
    assert longest_interval("0 0 9-17 * * *", start) == timedelta(hours=16)  # the night
    assert CoreWorld().services.captures.slack == timedelta(minutes=1) + LATE_RUN


def test_pruning_keeps_captured_objects_for_the_window_and_lets_them_go_after(world):
    app = with_point_in_time(world, world.app(documents=2), window_days=2)
    capture(world, app)
    went, stays = sorted(app.files)
    records = captures_of(world, app)
    remove_document(app, went)
    world.clock.advance(MINUTE)
    capture(world, app)
    pruning = world.services.pruning
    grace = timedelta(hours=6, minutes=1).total_seconds()

    report = pruning.prune({app.namespace})  # nothing refers to them but the captures: no backup was made
    assert report.captures_forgotten == 0
    assert report.marked[app.namespace] == 0
    world.clock.advance(timedelta(days=2).total_seconds() - MINUTE)  # the window's last minute
    report = pruning.prune({app.namespace})
    assert report.captures_forgotten == 0
    assert report.marked[app.namespace] == 0

    world.clock.advance(2 * MINUTE)  # gone for longer than the window: the capture is forgotten
    assert pruning.prune({app.namespace}).captures_forgotten == 1
    assert set(captures_of(world, app)) == {stays}
    world.clock.advance(grace)
    assert pruning.prune({app.namespace}).marked[app.namespace] == 1  # its object marked, the other not
    assert records[went].object in content_names(world, app)
    world.clock.advance(grace)
    assert pruning.prune({app.namespace}).swept[app.namespace] == 1
    assert content_names(world, app) == {records[stays].object}  # still referred to: kept


def test_pruning_lets_the_captures_of_an_environment_no_longer_captured_go_after_the_window(world):
    app = with_point_in_time(world, world.app(documents=2), window_days=1)
    capture(world, app)
    world.services.environment_catalog.update(
        app.environment_id, lambda environment: replace(environment, point_in_time=None)
    )
    world.clock.advance(timedelta(days=7, hours=-1).total_seconds())  # the default window, from the last run
    assert world.services.pruning.prune({app.namespace}).captures_forgotten == 0
    world.clock.advance(timedelta(hours=2).total_seconds())
    assert world.services.pruning.prune({app.namespace}).captures_forgotten == 2
    assert captures_of(world, app) == {}
    assert world.services.captures.latest_run(app.environment_id) is None
