"""The CLI's progress bars show a backup's or restore's files and bytes done of total and the time left;
Ctrl-C while it waits is never lost."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
import typer

from cli.api.shapes import FileProgressView, ProgressView, StepView
from cli.documents import Document
from cli.render.operations import files_text, load_text
from cli.render.operations import step_bar as _step_bar
from cli.watch import poll, waiting_with_cancel


def files(done: int, total: int | None, bytes_done: int, bytes_total: int | None, eta: float | None, percent=None):
    document = {"done": done, "total": total, "bytesDone": bytes_done, "bytesTotal": bytes_total}
    return Document({**document, "percent": percent, "etaSeconds": eta}, FileProgressView)


def progress(**fields: Any):
    """A step's progress as the API sends it (ProgressView), with ``fields`` over its defaults."""
    defaults = {"done": 0, "total": None, "bytesDone": 0, "bytesTotal": None, "percent": None, "detail": ""}
    return Document({**defaults, **fields}, ProgressView)


def step(status: str, **fields: Any):
    return Document({"name": "switch", "title": "Switch", "status": status, "attempts": 1, "startedOn": None,
                     "finishedOn": None, "progress": progress(**fields)}, StepView)  # fmt: skip


def test_files_and_bytes_of_total_with_the_time_left():
    shown = files(1200, 20000, 3_250_586, 53_477_376, 80.4)
    assert files_text(shown) == "1,200 of 20,000 files, 3.1 MiB of 51.0 MiB, about 1 min 20 s left"


def test_a_backup_knows_no_bytes_total_and_says_nothing_left_once_done():
    assert files_text(files(5, 9, 2048, None, 7200)) == "5 of 9 files, 2.0 KiB, about 2 h 00 min left"
    assert files_text(files(9, 9, 0, None, 0.0)) == "9 of 9 files"
    assert files_text(None) == ""


def test_a_step_with_files_is_barred_by_them():
    placing = step(
        "Running",
        percent=80.0,  # the database load's bytes, in a restore's switch
        detail="placing file documents",
        files=files(10, 40, 100, 400, 30, percent=25.0),
    )
    assert _step_bar(placing) == (
        25.0,
        "Running 10 of 40 files, 100 B of 400 B, about 30 s left placing file documents",
    )
    assert _step_bar(step("Finished")) == (100, "Finished")


def test_a_restores_database_load_shows_its_tables_and_bytes_of_total():
    """The switch step while pg_restore loads: the file documents bar it, and the load says how far it is."""
    loading = step(
        "Running",
        percent=0.0,
        detail="loading the database",
        bytesDone=41_943_040,
        bytesTotal=126_877_696,
        tablesDone=3,
        tablesTotal=12,
        files=files(0, 40, 0, 400, None, percent=0.0),
    )
    assert _step_bar(loading) == (
        0.0,
        "Running 0 of 40 files, 0 B of 400 B loading the database: tables 3 of 12, 40.0 MiB of 121.0 MiB",
    )
    assert load_text(progress(bytesDone=1024, bytesTotal=2048, tablesTotal=None)) == "1.0 KiB of 2.0 KiB"
    assert load_text(progress(tablesDone=0, tablesTotal=7)) == "tables 0 of 7"
    assert load_text(progress(done=3, total=9)) == ""


def test_a_ctrl_c_whose_interrupt_is_dropped_still_stops_the_wait():
    """CPython prints and drops a KeyboardInterrupt raised while it runs a finalizer; the press still counts."""
    before = signal.getsignal(signal.SIGINT)

    def drop_a_ctrl_c(document: dict[str, Any]) -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass

    def wait(interrupted: threading.Event) -> dict[str, Any]:
        return poll(
            lambda: {"status": "Running"},
            done=lambda d: False,
            on_update=drop_a_ctrl_c,
            interval=20,
            timeout=10,
            interrupted=interrupted,
        )

    started = time.monotonic()
    with pytest.raises(typer.Exit) as stopped:
        waiting_with_cancel("restore", wait, cancel=lambda: pytest.fail("stdin is no terminal: nothing to ask"))
    assert stopped.value.exit_code == 130
    assert time.monotonic() - started < 5
    assert signal.getsignal(signal.SIGINT) is before
