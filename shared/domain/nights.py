"""A night of the fleet as the nights view shows it: per environment, where its scheduled backup of one night stands."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from shared.domain.environments import Environment


class NightState(StrEnum):
    NOT_DUE = "notDue"
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class EnvironmentNight:
    environment: Environment
    state: NightState
    backup_id: str | None = None
    detail: str = ""  # why not due, what it waits for, how far it is, why it failed


@dataclass(frozen=True)
class Night:
    night: date
    environments: tuple[EnvironmentNight, ...]

    @property
    def counts(self) -> dict[NightState, int]:
        counted = Counter(entry.state for entry in self.environments)
        return {state: counted.get(state, 0) for state in NightState}
