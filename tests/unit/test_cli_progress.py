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

from cli.app import _step_bar, files_text, load_text, waiting_with_cancel
from cli.client import Client
from cli.config import ClientConfig


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


def test_a_restores_database_load_shows_its_tables_and_bytes_of_total():
    """The switch step while pg_restore loads: the file documents bar it, and the load says how far it is."""
    step = {
        "status": "Running",
        "progress": {
            "percent": 0.0,
            "detail": "loading the database",
            "bytesDone": 41_943_040,
            "bytesTotal": 126_877_696,
            "tablesDone": 3,
            "tablesTotal": 12,
            "files": {"done": 0, "total": 40, "bytesDone": 0, "bytesTotal": 400, "percent": 0.0, "etaSeconds": None},
        },
    }
    assert _step_bar(step) == (
        0.0,
        "Running 0 of 40 files, 0 B of 400 B loading the database: tables 3 of 12, 40.0 MiB of 121.0 MiB",
    )
    assert load_text({"bytesDone": 1024, "bytesTotal": 2048, "tablesTotal": None}) == "1.0 KiB of 2.0 KiB"
    assert load_text({"tablesDone": 0, "tablesTotal": 7, "bytesTotal": None}) == "tables 0 of 7"
    assert load_text({"done": 3, "total": 9}) == ""


class _AlwaysRunning(Client):
    def get(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return {"status": "Running", "path": path}


def test_a_ctrl_c_whose_interrupt_is_dropped_still_stops_the_wait():
    """CPython prints and drops a KeyboardInterrupt raised while it runs a finalizer; the press still counts."""
    client = _AlwaysRunning(ClientConfig())
    before = signal.getsignal(signal.SIGINT)

    def drop_a_ctrl_c(document: dict[str, Any]) -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass

    def wait(interrupted: threading.Event) -> dict[str, Any]:
        return client.wait(
            "/restores/r1",
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
