"""Timer triggers: run each timer function at the next occurrence of its schedule (UTC)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from azure.functions.timer import TimerRequest

from devhost.loader import FunctionInfo
from devhost.settings import resolve_references
from shared.schedules.ncrontab import parse_schedule

log = logging.getLogger("devhost.timers")

PAST_DUE_TOLERANCE = 1.0  # seconds late before an invocation counts as past due


class Invokes(Protocol):
    def invoke(self, function: FunctionInfo, trigger_value: Any, *, details: str = "") -> Any: ...


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def timer_request(past_due: bool, last: dt.datetime | None = None, next_due: dt.datetime | None = None) -> TimerRequest:
    """The ``TimerRequest`` the function receives, ``schedule_status`` shaped like the host's: as in
    the WebJobs timer extension, ``Next`` is the occurrence the scheduler waited for — the one this
    invocation is for, in the past when it runs late — and ``Last`` the one before it."""
    status = {}
    if last is not None:
        status["Last"] = last.isoformat()
    if next_due is not None:
        status["Next"] = next_due.isoformat()
    status["LastUpdated"] = utc_now().isoformat()
    return TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": False})


class TimerRunner:
    """Runs one timer function on its schedule in a background thread.

    Invocations of one timer never overlap (the host holds a singleton lock per timer). If an invocation
    overruns later occurrences, the first one missed runs once, marked past due, and the schedule then
    resumes from the current time: missed occurrences are not replayed one by one.
    ``clock`` and ``wait`` are seams for tests; ``wait(seconds)`` returns True when the runner should stop.
    """

    def __init__(
        self,
        function: FunctionInfo,
        invoker: Invokes,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        wait: Callable[[float], bool] | None = None,
        tolerance: float = PAST_DUE_TOLERANCE,
        run_on_startup: bool | None = None,
    ) -> None:
        self.function = function
        self.schedule = parse_schedule(resolve_references(function.schedule, environ, what="schedule"))
        self._invoker = invoker
        self._clock = clock
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._tolerance = tolerance
        self._run_on_startup = function.run_on_startup if run_on_startup is None else run_on_startup
        self._thread = threading.Thread(target=self.run, name=f"devhost-timer-{function.name}", daemon=True)
        self.next_due: dt.datetime | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run(self) -> None:
        last: dt.datetime | None = None
        due = self.schedule.next_after(self._clock())
        if self._run_on_startup:
            self._fire(past_due=False, last=None, next_due=self._clock())
        caught_up = False
        while True:
            self.next_due = due
            if not self._sleep_until(due):
                return
            late = (self._clock() - due).total_seconds()
            following = self.schedule.next_after(due)
            self._fire(past_due=late > self._tolerance, last=last, next_due=due)
            last = due
            now = self._clock()
            if following > now:
                due, caught_up = following, False
            elif not caught_up:
                due, caught_up = following, True  # one past-due run for what was missed
            else:
                due, caught_up = self.schedule.next_after(now), False

    def _sleep_until(self, due: dt.datetime) -> bool:
        while True:
            remaining = (due - self._clock()).total_seconds()
            if remaining <= 0:
                return not self._stop.is_set()
            if self._wait(min(remaining, 1.0)):
                return False

    def _fire(self, *, past_due: bool, last: dt.datetime | None, next_due: dt.datetime) -> None:
        if self._stop.is_set():
            return
        try:
            self._invoker.invoke(
                self.function,
                timer_request(past_due, last, next_due),
                details=f", PastDue={past_due}",
            )
        except Exception:  # the invoker logs user errors itself; this is a host bug
            log.exception("Timer %s: invocation failed inside the host", self.function.name)
