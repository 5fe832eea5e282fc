"""What the gauges read, lazily, when the exporter collects: each environment's recovery point age, the work queues'
depth and oldest message, operations Stalled longer than their bound; and the storage each namespace uses, measured
after each prune."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.adapters.blobs import BlobStore
from shared.adapters.queuestats import QueueMeasure, QueueStats
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.operations import OperationCatalog
from shared.clock import Clock
from shared.domain.environments import Environment, EnvironmentState
from shared.faults import describe
from shared.telemetry import names
from shared.telemetry.telemetry import Reading, Telemetry

logger = logging.getLogger("appbackups.telemetry")

LatestRestorable = Callable[[Environment], datetime | None]  # an environment's latest restorable instant, if any


@dataclass(frozen=True)
class _RecoveryPoint:
    environment_id: str
    namespace: str
    instant: datetime  # the latest recovery point, or the registration when there is none yet


class RecoveryPoints:
    """Per environment that can be backed up: how far its latest recovery point lags the clock — its newest
    successful backup of the present, or the latest restorable instant of its recovery window where it has point
    in time, whichever is later. An environment with neither counts from its registration. The instants are read
    at most once per ``refresh`` (the catalog and the archives' listings); the ages are computed at each reading."""

    def __init__(
        self,
        environments: EnvironmentCatalog,
        backups: BackupCatalog,
        latest_restorable: LatestRestorable,
        clock: Clock,
        refresh: timedelta = timedelta(minutes=10),
    ) -> None:
        self._environments = environments
        self._backups = backups
        self._latest_restorable = latest_restorable
        self._clock = clock
        self._refresh = refresh
        self._lock = threading.Lock()
        self._points: list[_RecoveryPoint] = []
        self._read_on: datetime | None = None

    def ages(self) -> Reading:
        now = self._clock()
        return [
            (
                max((now - point.instant).total_seconds(), 0.0),
                {names.ENVIRONMENT: point.environment_id, names.NAMESPACE: point.namespace},
            )
            for point in self._current(now)
        ]

    def _current(self, now: datetime) -> list[_RecoveryPoint]:
        with self._lock:
            if self._read_on is None or now - self._read_on >= self._refresh:
                self._points = [
                    self._point(environment)
                    for environment in self._environments.registered()
                    if environment.state not in (EnvironmentState.CREATING, EnvironmentState.CREATION_FAILED)
                ]
                self._read_on = now
            return list(self._points)

    def _point(self, environment: Environment) -> _RecoveryPoint:
        latest = self._backups.latest_recovery_point(environment.id)
        candidates = [latest.finished_on or latest.created_on] if latest is not None else []
        if environment.point_in_time is not None:
            try:
                restorable = self._latest_restorable(environment)
            except Exception as error:  # the archive cannot be listed now: the backups alone count
                logger.warning("the recovery window of %s could not be read: %s", environment.id, describe(error))
                restorable = None
            if restorable is not None:
                candidates.append(restorable)
        instant = max(candidates) if candidates else environment.created_on
        return _RecoveryPoint(environment.id, environment.namespace, instant)


class QueueGauges:
    """Each work queue's depth (every message, visible or not) and the age of its oldest visible message (the
    one a worker takes next; none when nothing waits). Both gauges share one measurement per ``fresh`` seconds."""

    def __init__(self, queues: Mapping[str, QueueStats], clock: Clock, fresh: float = 10.0) -> None:
        self._queues = dict(queues)
        self._clock = clock
        self._fresh = fresh
        self._lock = threading.Lock()
        self._measured: dict[str, QueueMeasure] = {}
        self._measured_at = -float("inf")

    def _measure(self) -> dict[str, QueueMeasure]:
        with self._lock:
            if time.monotonic() - self._measured_at >= self._fresh:
                measured = {}
                for name, stats in self._queues.items():
                    try:
                        measured[name] = stats.measure()
                    except Exception as error:  # one queue unreadable: the others are still reported
                        logger.warning("queue %s could not be measured: %s", name, describe(error))
                self._measured, self._measured_at = measured, time.monotonic()
            return dict(self._measured)

    def depths(self) -> Reading:
        return [(float(measure.depth), {names.QUEUE: name}) for name, measure in self._measure().items()]

    def oldest_message_ages(self) -> Reading:
        now = self._clock()
        return [
            (max((now - measure.oldest_inserted_on).total_seconds(), 0.0), {names.QUEUE: name})
            for name, measure in self._measure().items()
            if measure.oldest_inserted_on is not None
        ]


class StalledOperations:
    """Open operations whose worker stopped checking in (Stalled) longer ago than ``bound``: the engine's watchdog
    and the reaper resume any operation well within it, so one beyond it means they did not. Counted per kind and
    environment; the kinds and environments of open operations with none so stalled read 0."""

    def __init__(self, operations: OperationCatalog, clock: Clock, bound: timedelta) -> None:
        self._operations = operations
        self._clock = clock
        self.bound = bound

    def counts(self) -> Reading:
        now = self._clock()
        counts: dict[tuple[str, str, str], int] = {}
        for operation in self._operations.open_operations():
            key = (operation.kind, operation.environment_id, operation.namespace)
            since = operation.stalled_since(now)
            counts[key] = counts.get(key, 0) + (1 if since is not None and now - since > self.bound else 0)
        return [
            (float(count), {names.OPERATION_KIND: kind, names.ENVIRONMENT: environment, names.NAMESPACE: namespace})
            for (kind, environment, namespace), count in counts.items()
        ]


class StorageUsage:
    """The bytes each namespace keeps in each store (its backups' dumps and manifests; its file documents'
    content), listed and added up: the prune timer measures it after each prune."""

    def __init__(self, environments: EnvironmentCatalog, stores: Mapping[str, BlobStore], telemetry: Telemetry) -> None:
        self._environments = environments
        self._stores = dict(stores)
        self._telemetry = telemetry

    def measure(self) -> dict[tuple[str, str], int]:
        """(namespace, store) -> bytes, each also recorded as the storage-used gauge."""
        namespaces = sorted({environment.namespace for environment in self._environments.all()})
        used: dict[tuple[str, str], int] = {}
        for namespace in namespaces:
            for store_name, store in self._stores.items():
                size = sum(blob.size for blob in store.list(f"{namespace}/", page_size=5000))
                used[namespace, store_name] = size
                self._telemetry.storage_used(namespace, store_name, size)
        return used


def register_gauges(
    telemetry: Telemetry,
    *,
    recovery_points: RecoveryPoints,
    stalled: StalledOperations,
    queues: QueueGauges | None,
) -> None:
    telemetry.observe(
        names.RECOVERY_POINT_AGE,
        "s",
        "How far each environment's latest recovery point lags now",
        recovery_points.ages,
    )
    telemetry.observe(
        names.OPERATIONS_STALLED,
        "{operation}",
        f"Operations Stalled for longer than {stalled.bound.total_seconds():.0f} s",
        stalled.counts,
    )
    if queues is not None:
        telemetry.observe(names.QUEUE_DEPTH, "{message}", "Messages in each work queue", queues.depths)
        telemetry.observe(
            names.QUEUE_OLDEST_MESSAGE_AGE,
            "s",
            "Age of the oldest message waiting in each work queue",
            queues.oldest_message_ages,
        )
