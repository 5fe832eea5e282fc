"""The past an environment can be backed up (and restored) from: its recovery window, and the one check
every backup of the past and every restore to a point in time makes first (configured, inside the window)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.adapters.pointintime import PointInTimeSource, RecoveryWindow
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain.environments import Environment
from shared.errors import Conflict, ServiceUnavailable, Unprocessable
from shared.faults import Fault


@dataclass(frozen=True)
class Window:
    """An environment's recovery window, as read now."""

    environment_id: str
    server: str
    window: RecoveryWindow
    read_on: datetime

    @property
    def recovery_point_seconds(self) -> float | None:
        """How far the latest restorable instant lags the clock."""
        if self.window.latest is None:
            return None
        return round(max((self.read_on - self.window.latest).total_seconds(), 0.0), 3)


def describe_window(window: RecoveryWindow) -> dict[str, object]:
    """The window as a problem's extension: what the caller can ask for instead."""
    return {
        "earliest": window.earliest.isoformat() if window.earliest else None,
        "latest": window.latest.isoformat() if window.latest else None,
        "gaps": [
            {"start": gap.start.isoformat(), "end": gap.end.isoformat(), "reason": gap.reason} for gap in window.gaps
        ],
    }


class PastReader:
    """Whether, and how far back, an environment's past can be read."""

    def __init__(self, source: PointInTimeSource | None, environments: EnvironmentCatalog, clock: Clock) -> None:
        self.source = source
        self._environments = environments
        self._clock = clock

    def server(self, environment: Environment) -> str:
        """The archive's name for the environment's server; 409 when the environment has none."""
        configured = environment.point_in_time
        if configured is None:
            raise Conflict(
                f"Environment {environment.id} has no point-in-time recovery: its registration names no archived "
                "server (pointInTime). Back it up and restore it from its backups, or register its server's "
                "archive first.",
                code="point_in_time_not_configured",
            )
        if self.source is None:
            raise Conflict(
                "Point-in-time recovery is not set up on this service (no archive of PostgreSQL servers is "
                "configured).",
                code="point_in_time_not_configured",
            )
        return configured.server

    def window(self, environment_id: str) -> Window:
        environment = self._environments.get(environment_id)
        return Window(environment.id, self.server(environment), self.window_of(environment), self._clock())

    def window_of(self, environment: Environment) -> RecoveryWindow:
        """What the environment's archive can restore now; 409 when it has none."""
        server = self.server(environment)
        assert self.source is not None
        try:
            return self.source.window(server)
        except Fault as error:  # the archive cannot be listed just now
            raise ServiceUnavailable(
                f"The recovery window of {environment.id} cannot be read just now: {error}", code="archive_unavailable"
            ) from error

    def check(self, environment: Environment, instant: datetime) -> RecoveryWindow:
        """Refuse (422, naming the window) an instant that cannot be restored; the window otherwise."""
        window = self.window_of(environment)
        refuse(environment, window, instant)
        return window


def refuse(environment: Environment, window: RecoveryWindow, instant: datetime) -> None:
    """422 naming the window, when ``instant`` cannot be restored from it."""
    refusal = window.refusal(instant)
    if refusal is not None:
        raise Unprocessable(
            f"{environment.id}: {refusal}", code="instant_outside_window", window=describe_window(window)
        )
