"""Health: can the service reach its storage and the environments' databases?"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from shared.adapters.postgres import Databases
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain.environments import EnvironmentState
from shared.domain.health import Check, Freshness, HealthReport
from shared.errors import AppError
from shared.faults import describe

Probe = Callable[[], object]  # raises when what it probes cannot be reached


def _check(name: str, probe: Probe) -> Check:
    try:
        probe()
    except AppError as error:
        return Check(name=name, status="failed", detail=error.detail)
    except Exception as error:  # a probe reports whatever stops it; it never raises
        return Check(name=name, status="failed", detail=describe(error))
    return Check(name=name, status="ok")


class HealthService:
    def __init__(
        self,
        storage_probes: Mapping[str, Probe],
        environments: EnvironmentCatalog,
        databases: Databases,
        backup_catalog: BackupCatalog,
        clock: Clock,
        freshness: timedelta,
    ) -> None:
        self._storage_probes = storage_probes
        self._environments = environments
        self._databases = databases
        self._backup_catalog = backup_catalog
        self._clock = clock
        self._freshness = freshness

    def freshness(self) -> list[Freshness]:
        """Per environment that can be backed up: its last successful backup, and whether that is
        older than the freshness window (26 hours: a night's backup plus slack)."""
        now = self._clock()
        results = []
        for environment in self._environments.registered():
            if environment.state in (EnvironmentState.CREATING, EnvironmentState.CREATION_FAILED):
                continue
            latest = self._backup_catalog.latest_recovery_point(environment.id)
            last = latest.finished_on or latest.created_on if latest else None
            if last is not None and now - last <= self._freshness:
                status = "ok"
            elif last is None and now - environment.created_on <= self._freshness:
                status = "new"
            else:
                status = "stale"
            results.append(Freshness(environment=environment.id, status=status, last_successful_backup=last))
        return results

    def check(self) -> HealthReport:
        storage = [_check(name, probe) for name, probe in self._storage_probes.items()]
        databases: list[Check] = []
        if all(result.status == "ok" for result in storage):
            environments = self._environments.registered()  # a deregistered app's database is gone
            with ThreadPoolExecutor(max_workers=min(8, max(1, len(environments)))) as pool:
                databases = list(
                    pool.map(lambda env: _check(env.id, lambda: self._databases.ping(env.database)), environments)
                )
        backups = self.freshness() if all(result.status == "ok" for result in storage) else []
        if any(result.status == "failed" for result in storage):
            status = "unhealthy"
        elif any(result.status == "failed" for result in databases) or any(b.status == "stale" for b in backups):
            status = "degraded"
        else:
            status = "healthy"
        return HealthReport(status=status, storage=storage, databases=databases, backups=backups)
