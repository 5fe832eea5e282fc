"""A night of the fleet: per environment, where its scheduled backup of one night stands — not due, waiting
(for its start in the night's spread, or for a slot on its database server), running, done or failed."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.nights import NightCatalog
from shared.domain.backups import BackupStatus
from shared.domain.environments import BACKUP_ELIGIBLE_STATES, Environment
from shared.domain.nights import EnvironmentNight, Night, NightState
from shared.domain.operations import Operation, StepStatus

READERS = 16


class NightsView:
    def __init__(
        self,
        environments: EnvironmentCatalog,
        nights: NightCatalog,
        backups: BackupCatalog,
        find_operation: Callable[[str], Operation | None],
    ) -> None:
        self._environments = environments
        self._nights = nights
        self._backups = backups
        self._find_operation = find_operation

    def night(self, night: date, namespaces: set[str] | None) -> Night:
        """Every registered environment of ``namespaces`` (None: all), by namespace and id."""
        environments = sorted(
            (env for env in self._environments.registered() if namespaces is None or env.namespace in namespaces),
            key=lambda env: (env.namespace, env.id),
        )
        if len(environments) <= 1:
            return Night(night, tuple(self._of(environment, night) for environment in environments))
        # Two or three point reads per environment: side by side, or a fleet's night takes a minute to show.
        with ThreadPoolExecutor(max_workers=min(READERS, len(environments)), thread_name_prefix="night") as pool:
            return Night(night, tuple(pool.map(lambda environment: self._of(environment, night), environments)))

    def _of(self, environment: Environment, night: date) -> EnvironmentNight:
        record = self._nights.find(environment.id, night)
        if record is None:
            why = "no scheduled backup was due for it this night"
            if environment.state not in BACKUP_ELIGIBLE_STATES:
                why = f"the environment is {environment.state.value}"
            return EnvironmentNight(environment, NightState.NOT_DUE, detail=why)
        if record.backup_id is None:
            return EnvironmentNight(environment, NightState.WAITING, detail="waiting for its start in the night")
        backup = self._backups.find(environment.id, record.backup_id)
        if backup is None:
            return EnvironmentNight(environment, NightState.WAITING, record.backup_id, "being started")
        if backup.status is BackupStatus.FINISHED:
            return EnvironmentNight(environment, NightState.DONE, backup.id)
        if backup.status is not BackupStatus.PROCESSING:
            return EnvironmentNight(environment, NightState.FAILED, backup.id, backup.status_message or "")
        operation = self._find_operation(backup.operation_id) if backup.operation_id else None
        if operation is None:
            return EnvironmentNight(environment, NightState.WAITING, backup.id, "queued")
        running = operation.running_index()
        if running is not None:
            step = operation.steps[running]
            return EnvironmentNight(environment, NightState.RUNNING, backup.id, step.progress.detail or step.title)
        current = operation.current_index
        detail = operation.steps[current].message if current is not None else ""
        if current is not None and operation.steps[current].status is StepStatus.FINISHED:
            detail = ""
        return EnvironmentNight(environment, NightState.WAITING, backup.id, detail or "queued")
