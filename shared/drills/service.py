"""Use cases on restore drills: start one for a backup (by hand, or the weekly timer for the newest Finished
backup of every environment that has not opted out, and for a random instant of the recovery window of each
one with point-in-time recovery), read it, cancel it."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from random import Random

from shared.adapters.pointintime import RecoveryWindow
from shared.backups.pointintime import PastReader
from shared.backups.service import BackupService
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain.access import SCHEDULER, Principal
from shared.domain.backups import Actor, Backup, BackupStatus, new_backup_id
from shared.domain.operations import Operation
from shared.domain.verification import Verification, VerificationStatus
from shared.drills.steps import KIND, POINT_IN_TIME, user_of
from shared.errors import AppError, Conflict, NotFound, StaleRecord
from shared.faults import Fault
from shared.operations.engine import OperationEngine

logger = logging.getLogger("appbackups.drills")


_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class ScheduledDrills:
    started: tuple[str, ...] = ()  # environments
    skipped: tuple[tuple[str, str], ...] = ()  # (environment, why)
    # the recovery windows proved: a drill of a random instant of each (environment, instant) ...
    instants: tuple[tuple[str, datetime], ...] = ()
    # ... and those of environments with point-in-time recovery that could not be (environment, why)
    instants_skipped: tuple[tuple[str, str], ...] = ()


def random_instant(window: RecoveryWindow, rng: Random) -> datetime | None:
    """A whole second of the window, uniformly at random, in none of its gaps; None when it holds none."""
    if window.earliest is None or window.latest is None:
        return None
    spans: list[tuple[datetime, datetime]] = []  # restorable whole seconds, both ends included
    start = _ceil_second(window.earliest)
    for gap in sorted(window.gaps, key=lambda gap: gap.start):
        spans.append((start, _ceil_second(gap.start) - _SECOND))  # before the gap, its start excluded
        start = max(start, _floor_second(gap.end) + _SECOND)  # after it, its end excluded
    spans.append((start, _floor_second(window.latest)))
    counts = [int((end - begin) / _SECOND) + 1 if end >= begin else 0 for begin, end in spans]
    total = sum(counts)
    if total == 0:
        return None
    pick = math.floor(rng.random() * total)
    for (begin, _), count in zip(spans, counts, strict=True):
        if pick < count:
            return begin + pick * _SECOND
        pick -= count
    return None  # not reached


def _floor_second(instant: datetime) -> datetime:
    return instant.replace(microsecond=0)


def _ceil_second(instant: datetime) -> datetime:
    floor = _floor_second(instant)
    return floor if floor == instant else floor + _SECOND


class DrillService:
    def __init__(
        self,
        engine: OperationEngine,
        environments: EnvironmentCatalog,
        backup_catalog: BackupCatalog,
        backups: BackupService,
        clock: Clock,
        past: PastReader | None = None,
        rng: Random | None = None,
    ) -> None:
        self._past = past
        # which instant of a recovery window the weekly run proves (seeded in tests); no secret rests on it
        self.rng = rng or Random()  # noqa: S311
        self._engine = engine
        self._environments = environments
        self._backup_catalog = backup_catalog
        self._backups = backups
        self._clock = clock

    def request(self, environment_id: str, backup_id: str, actor: Principal) -> Operation:
        """Start a drill of a Finished backup: the backup shows verification Running and is in use until it
        ends. Refused (409) while another drill of it runs."""
        backup = self._backups.get(environment_id, backup_id)
        if backup.status is not BackupStatus.FINISHED:
            raise Conflict(
                f"Backup {backup.id} is {backup.status.value}; only a Finished backup can be verified.",
                code="backup_not_finished",
            )
        running = self._running(backup)
        if running is not None:
            raise Conflict(
                f"A restore drill of backup {backup.id} is running already ({running.id}).",
                code="verification_running",
                drillId=running.id,
            )
        environment = self._environments.get(backup.environment_id)
        environment.ensure_registered("a restore drill")
        operation = self._engine.new(
            KIND,
            environment_id=backup.environment_id,
            namespace=backup.namespace,
            actor=Actor(actor.id, actor.name),
            backup_id=backup.id,
            parameters={
                "previousVerification": backup.verification.to_dict() if backup.verification else None,
            },
        )
        running_now = Verification(VerificationStatus.RUNNING, operation.id, operation.created_on)
        try:
            self._backup_catalog.save(
                replace(
                    backup,
                    verification=running_now,
                    in_use_by=tuple(dict.fromkeys((*backup.in_use_by, user_of(operation)))),
                )
            )
        except (StaleRecord, NotFound) as error:
            self._engine.abandon(operation.id, "The backup changed while the drill was being started.")
            raise Conflict(
                f"Backup {backup.id} changed while the drill was being started; try again.",
                code="concurrent_update",
            ) from error
        self._engine.launch(operation, "drill")
        logger.info("restore drill %s of backup %s of %s started", operation.id, backup.id, backup.environment_id)
        return operation

    def request_to_time(self, environment_id: str, instant: datetime, actor: Principal) -> Operation:
        """Start a drill of the environment as it was at ``instant`` (docs/decisions/0010, "A drill of a point in
        time"): a drill like any other, of the backup of that instant, which it records now (the window checked
        first: 409 without point-in-time recovery, 422 outside the window, 503 when the archive cannot be read)
        and makes as its first step. The backup shows verification Running and is in use until the drill ends."""
        instant = instant.astimezone(UTC)
        environment = self._environments.get(environment_id)
        environment.ensure_registered("a restore drill")
        backup_id = new_backup_id(self._clock())
        operation = self._engine.new(
            KIND,
            environment_id=environment.id,
            namespace=environment.namespace,
            actor=Actor(actor.id, actor.name),
            backup_id=backup_id,
            parameters={"previousVerification": None, POINT_IN_TIME: instant.isoformat()},
        )
        self._backups.record_instant_for(
            operation, environment.id, actor, backup_id, instant, f"for restore drill {operation.id}"
        )
        running_now = Verification(VerificationStatus.RUNNING, operation.id, operation.created_on)
        try:
            self._backup_catalog.update(
                environment.id,
                backup_id,
                lambda current: replace(
                    current,
                    verification=running_now,
                    in_use_by=tuple(dict.fromkeys((*current.in_use_by, user_of(operation)))),
                ),
            )
        except (StaleRecord, NotFound) as error:
            self._engine.abandon(operation.id, "The backup of the instant changed while the drill was being started.")
            raise Conflict(
                f"Backup {backup_id} changed while the drill was being started; try again.", code="concurrent_update"
            ) from error
        self._engine.launch(operation, "drill")
        logger.info("restore drill %s of %s as of %s started", operation.id, environment.id, instant.isoformat())
        return operation

    def _running(self, backup: Backup) -> Operation | None:
        verification = backup.verification
        if verification is None or verification.status is not VerificationStatus.RUNNING:
            return None
        operation = self._engine.find(verification.operation_id)
        return operation if operation is not None and operation.open else None

    def get(self, drill_id: str) -> Operation:
        return self._engine.get(drill_id, KIND)

    def cancel(self, drill_id: str, actor: Principal) -> Operation:
        """Stop a drill: its scratch database is dropped, the backup keeps its earlier result. Idempotent."""
        return self._engine.cancel(drill_id, Actor(actor.id, actor.name), KIND)

    def run_scheduled(self) -> ScheduledDrills:
        """The weekly timer: a drill of the newest Finished backup of every registered environment that has
        not opted out (``scheduledDrills: false``) and has no drill running; and, for each of them with
        point-in-time recovery, a drill of a random instant of its recovery window. What cannot be started is
        skipped with the reason, and the other environments go on."""
        started: list[str] = []
        skipped: list[tuple[str, str]] = []
        instants: list[tuple[str, datetime]] = []
        instants_skipped: list[tuple[str, str]] = []
        for environment in self._environments.registered():
            if not environment.scheduled_drills:
                skipped.append((environment.id, "it opted out (scheduledDrills: false)"))
                continue
            backup = self._backup_catalog.latest_recovery_point(environment.id)
            if backup is None:
                skipped.append((environment.id, "it has no Finished backup"))
            else:
                try:
                    self.request(environment.id, backup.id, SCHEDULER)
                except Conflict as refused:
                    skipped.append((environment.id, refused.detail))
                else:
                    started.append(environment.id)
            if environment.point_in_time is not None:
                try:
                    instants.append((environment.id, self._prove_window(environment.id)))
                except (AppError, Fault) as refused:
                    instants_skipped.append((environment.id, getattr(refused, "detail", None) or str(refused)))
                except Exception as error:  # a bug in one environment's proof does not stop the others
                    logger.exception("the recovery window of %s could not be proved", environment.id)
                    instants_skipped.append((environment.id, f"unexpected error: {error}"))
        for environment_id, why in skipped:
            logger.info("no scheduled restore drill of %s: %s", environment_id, why)
        for environment_id, why in instants_skipped:
            logger.info("no scheduled restore drill of an instant of %s's recovery window: %s", environment_id, why)
        logger.info(
            "scheduled restore drills: %d started, %d skipped; of an instant of the recovery window: %d started, "
            "%d skipped",
            len(started),
            len(skipped),
            len(instants),
            len(instants_skipped),
        )
        return ScheduledDrills(tuple(started), tuple(skipped), tuple(instants), tuple(instants_skipped))

    def _prove_window(self, environment_id: str) -> datetime:
        """Start a drill of a random instant of the environment's recovery window; the instant. Raises, with
        the reason, when there is none to drill or the archive cannot be read."""
        if self._past is None:
            raise Conflict("Point-in-time recovery is not set up on this service.", code="point_in_time_not_configured")
        environment = self._environments.get(environment_id)
        window = self._past.window_of(environment)
        instant = random_instant(window, self.rng)
        if instant is None:
            raise Conflict(
                window.refusal(window.latest or self._clock())
                or "Its recovery window holds no restorable second outside its gaps.",
                code="instant_outside_window",
            )
        self.request_to_time(environment.id, instant, SCHEDULER)
        return instant
