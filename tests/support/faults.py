"""The fault harness: the real app in the development host as a child process, killed for real.

A host is started with ``APPBACKUPS_CRASH_POINTS`` naming one point; when the work reaches it, the
process SIGKILLs itself (no clean-up, no last write). The harness then starts a host without crash
points, as an operator running ``make run`` again would, and measures how long the work took to
resume: from the kill to the first check-in of a new worker on the same operation. The lease is
short here so that the suite stays fast; the bound is stated in terms of it."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shared.bootstrap import Services
from shared.domain.operations import Operation
from tests.support.apphost import AppHost, start_app_host

LEASE_SECONDS = 6
WATCHDOG_SLACK_SECONDS = 1  # what bootstrap derives from a 6-second lease: max(1 s, lease / 24)
MAX_POLLING_SECONDS = 1  # host.json extensions.queues.maxPollingInterval
TOLERANCE_SECONDS = 5  # the two cores are shared with Azurite, PostgreSQL and the test itself


@dataclass
class Recovery:
    operation: Operation  # as it ended
    killed_at: float  # monotonic
    restarted_in: float  # seconds the new host took to answer
    resumed_after: float  # seconds from the kill to the first check-in of a new worker
    ended_after: float  # seconds from the kill to the end of the operation

    @property
    def bound(self) -> float:
        """The promise: a dead worker's step resumes when its lease has run out and the watchdog message
        that was due then has been picked up — or, if the host took longer to come back, once it is back."""
        due = LEASE_SECONDS + WATCHDOG_SLACK_SECONDS
        return max(due, self.restarted_in) + MAX_POLLING_SECONDS + TOLERANCE_SECONDS


class FaultHarness:
    def __init__(
        self, services: Services, connection_string: str, log_dir: Path, settings: dict[str, str] | None = None
    ) -> None:
        self.services = services
        self._settings = settings or {}
        self._connection_string = connection_string
        self._log_dir = log_dir
        self._hosts: list[AppHost] = []
        self._count = 0

    def start_host(self, crash_points: tuple[str, ...] = ()) -> AppHost:
        self._count += 1
        settings = {
            "APPBACKUPS_OPERATION_LEASE_SECONDS": str(LEASE_SECONDS),
            "APPBACKUPS_OPERATION_RETRY_SECONDS": "1",
            "APPBACKUPS_CRASH_POINTS": ",".join(crash_points),
            "APPBACKUPS_COPY_CONCURRENCY": "4",
            **self._settings,
        }
        host = start_app_host(
            self._connection_string, self._log_dir / f"host-{self._count}.log", extra_settings=settings
        )
        self._hosts.append(host)
        return host

    def stop_all(self) -> None:
        for host in self._hosts:
            host.stop()

    def crash_and_recover(
        self,
        point: str,
        start_work: Callable[[AppHost], str],
        *,
        after_kill: Callable[[Operation], None] | None = None,
        timeout: float = 180,
    ) -> Recovery:
        """Start work on a host armed with ``point``; wait for the kill; check ``after_kill``; start a
        clean host and wait for the operation (``start_work`` returns its id) to end."""
        host = self.start_host((point,))
        operation_id = start_work(host)
        killed_at = _wait_for_exit(host, timeout)
        killed_on = datetime.now(UTC)
        crashed = self.services.operations.get(operation_id)
        assert crashed.open, f"the work ended before the crash point {point} was reached"
        if after_kill is not None:
            after_kill(crashed)
        started = time.monotonic()
        self.start_host()
        restarted_in = time.monotonic() - started
        resumed_after = None
        deadline = time.monotonic() + timeout
        while True:
            current = self.services.operations.get(operation_id)
            if resumed_after is None and (
                (current.heartbeat_on is not None and current.heartbeat_on > killed_on) or not current.open
            ):
                resumed_after = time.monotonic() - killed_at
            if not current.open:
                return Recovery(current, killed_at, restarted_in, resumed_after, time.monotonic() - killed_at)
            assert time.monotonic() < deadline, f"{point}: not done after {timeout} s: {current}"
            time.sleep(0.2)


def _wait_for_exit(host: AppHost, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while host.process.poll() is None:
        assert time.monotonic() < deadline, f"the host was not killed within {timeout} s:\n{host.log()[-3000:]}"
        time.sleep(0.05)
    assert host.process.returncode == -signal.SIGKILL, (host.process.returncode, host.log()[-3000:])
    return time.monotonic()
