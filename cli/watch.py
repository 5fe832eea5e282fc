"""Following long work: polling until it ends, live bars, and Ctrl-C that offers to cancel it."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from cli.api.shapes import BackupView, OperationView
from cli.client import FAILED, ApiError
from cli.render.operations import files_text, step_bar
from cli.session import current, err, fail

T = TypeVar("T")


def poll(
    fetch: Callable[[], T],
    *,
    done: Callable[[T], bool],
    on_update: Callable[[T], None] | None = None,
    interval: float = 1.0,
    timeout: float = 6 * 3600,
    interrupted: threading.Event | None = None,
    what: str = "it",
) -> T:
    """``fetch`` until ``done``; KeyboardInterrupt once ``interrupted`` is set (Ctrl-C's flag)."""
    interrupted = interrupted or threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        if interrupted.is_set():
            raise KeyboardInterrupt
        document = fetch()
        if on_update is not None:
            on_update(document)
        if done(document):
            return document
        if time.monotonic() > deadline:
            raise ApiError(f"gave up waiting for {what}", exit_code=FAILED)
        interrupted.wait(interval)


def waiting_with_cancel(what: str, wait: Callable[[threading.Event], T], cancel: Callable[[], Any]) -> T:
    """Run ``wait``; on Ctrl-C, offer to cancel the work (it goes on otherwise) and say where it stands.

    Ctrl-C also sets the event ``wait`` is given, which its polling checks: a KeyboardInterrupt raised
    while the interpreter runs a finalizer is printed and dropped, and the press would be lost."""
    interrupted = threading.Event()

    def on_interrupt(signum: int, frame: Any) -> None:
        interrupted.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        try:
            return wait(interrupted)
        finally:
            signal.signal(signal.SIGINT, previous)
    except KeyboardInterrupt:
        err.print()
        if sys.stdin.isatty() and typer.confirm(f"Cancel the {what}?", default=False):
            try:
                document = cancel()
            except ApiError as error:
                fail(error)
            err.print(f"{what}: cancel requested; it undoes what it did ({document.get('status')})")
            raise typer.Exit(130) from None
        err.print(f"stopped watching; the {what} goes on")
        raise typer.Exit(130) from None


def ended(document: OperationView) -> bool:
    return document["status"] not in ("Running", "Stalled")


def follow_operation(
    what: str, fetch: Callable[[], OperationView], cancel: Callable[[], OperationView]
) -> OperationView:
    """Live steps and progress of a restore or drill until it ends."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"), console=err
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def show(document: OperationView) -> None:
            for step in document["steps"]:
                task = tasks.get(step["name"])
                if task is None:
                    task = tasks[step["name"]] = progress.add_task(step["title"], total=100, detail="")
                percent, detail = step_bar(step)
                progress.update(task, completed=percent, detail=detail)

        return waiting_with_cancel(
            what,
            lambda interrupted: poll(fetch, done=ended, on_update=show, interrupted=interrupted, what=what),
            cancel,
        )


def follow_backup(env: str, backup_id: str) -> BackupView:
    """A backup being made (or an upload being checked), until it is no longer Processing."""
    api = current().api

    def follow(interrupted: threading.Event) -> BackupView:
        with err.status(f"backup {backup_id}: Processing") as status:

            def show(document: BackupView) -> None:
                files = files_text(document.get("fileProgress"))
                status.update(f"backup {backup_id}: {document['status']} {files or document['progress']}")

            return poll(
                lambda: api.backup(env, backup_id),
                done=lambda document: document["status"] != "Processing",
                on_update=show,
                interrupted=interrupted,
                what=f"backup {backup_id}",
            )

    return waiting_with_cancel("backup", follow, lambda: api.cancel_backup(env, backup_id))
