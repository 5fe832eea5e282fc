"""Files and bytes done of total, with the time left, as the API shows a backup's or restore's progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.contracts.progress import FileProgressView
from shared.domain.operations import Progress, Step, StepStatus, seconds_left

STARTED = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def running(progress: Progress) -> Step:
    return Step("switch", "Switch", status=StepStatus.RUNNING, started_on=STARTED, progress=progress)


def test_time_left_is_the_rate_so_far_carried_to_the_total():
    assert seconds_left(250, 1000, 30.0) == 90.0
    assert seconds_left(0, 1000, 30.0) is None  # no rate yet
    assert seconds_left(10, None, 30.0) is None  # no total
    assert seconds_left(1000, 1000, 30.0) == 0.0


def test_a_restore_estimates_by_bytes_when_it_knows_their_total():
    progress = Progress(files_done=10, files_total=40, file_bytes_done=1_000, file_bytes_total=4_000)
    view = FileProgressView.of(progress, running(progress), STARTED + timedelta(seconds=20))
    assert view is not None
    assert (view.done, view.total, view.bytes_done, view.bytes_total) == (10, 40, 1_000, 4_000)
    assert (view.percent, view.eta_seconds) == (25.0, 60.0)


def test_a_backup_estimates_by_files_when_the_bytes_total_is_unknown():
    progress = Progress(files_done=300, files_total=1200, file_bytes_done=9_000)
    view = FileProgressView.of(progress, running(progress), STARTED + timedelta(seconds=12))
    assert view is not None
    assert (view.percent, view.eta_seconds, view.bytes_total) == (25.0, 36.0, None)
    assert view.to_json()["etaSeconds"] == 36.0


def test_no_file_progress_for_a_step_without_files_and_none_left_once_finished():
    assert FileProgressView.of(Progress(done=3, total=4), None, STARTED) is None
    progress = Progress(files_done=5, files_total=5, file_bytes_done=50, file_bytes_total=50)
    finished = Step("dump", "Dump", status=StepStatus.FINISHED, started_on=STARTED, progress=progress)
    view = FileProgressView.of(progress, finished, STARTED + timedelta(seconds=3))
    assert view is not None
    assert view.eta_seconds == 0.0
