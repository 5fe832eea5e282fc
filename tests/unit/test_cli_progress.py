"""The CLI's progress bars show a backup's or restore's files and bytes done of total and the time left."""

from __future__ import annotations

from cli.app import _step_bar, files_text


def test_files_and_bytes_of_total_with_the_time_left():
    files = {"done": 1200, "total": 20000, "bytesDone": 3_250_586, "bytesTotal": 53_477_376, "etaSeconds": 80.4}
    assert files_text(files) == "1,200 of 20,000 files, 3.1 MiB of 51.0 MiB, about 1 min 20 s left"


def test_a_backup_knows_no_bytes_total_and_says_nothing_left_once_done():
    assert files_text({"done": 5, "total": 9, "bytesDone": 2048, "bytesTotal": None, "etaSeconds": 7200}) == (
        "5 of 9 files, 2.0 KiB, about 2 h 00 min left"
    )
    assert files_text({"done": 9, "total": 9, "bytesDone": 0, "bytesTotal": None, "etaSeconds": 0.0}) == "9 of 9 files"
    assert files_text(None) == ""


def test_a_step_with_files_is_barred_by_them():
    step = {
        "status": "Running",
        "progress": {
            "percent": 80.0,  # the database load's bytes, in a restore's switch
            "detail": "placing file documents",
            "files": {"done": 10, "total": 40, "bytesDone": 100, "bytesTotal": 400, "percent": 25.0, "etaSeconds": 30},
        },
    }
    assert _step_bar(step) == (25.0, "Running 10 of 40 files, 100 B of 400 B, about 30 s left placing file documents")
    assert _step_bar({"status": "Finished", "progress": {"percent": None, "detail": ""}}) == (100, "Finished")
