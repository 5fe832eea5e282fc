"""Publishing: an event goes into the outbox (the ``events`` queue), from where the fan-out sends it on
to the Event Grid topic and to the namespace's webhooks. Putting a message in a queue is all a job does,
so a slow or failing receiver never delays or fails the job.

A job publishes from its operation's end (``OperationDefinition.on_ended``), which the engine runs once
the final status is checkpointed and retries until it is done: a crash between the outcome and the
send publishes on resume, with the same event id (at least once)."""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.adapters.cloudevents import encode
from shared.adapters.queues import WorkQueue
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain.backups import Backup
from shared.domain.environments import EnvironmentState
from shared.domain.events import Event
from shared.domain.health import Freshness
from shared.domain.operations import Operation
from shared.events.outcomes import backup_expired_event, operation_event, schedule_missed_event
from shared.faults import crash_point

logger = logging.getLogger("appbackups.events")

FAN_OUT = "event"  # the kind of an outbox message


class EventPublisher:
    def __init__(
        self,
        outbox: WorkQueue,
        backup_catalog: BackupCatalog,
        environments: EnvironmentCatalog,
        clock: Clock,
        freshness: timedelta,
    ) -> None:
        self._outbox = outbox
        self._backup_catalog = backup_catalog
        self._environments = environments
        self._clock = clock
        self._freshness = freshness

    def publish(self, event: Event) -> None:
        self._outbox.send({"kind": FAN_OUT, "event": encode(event)})
        logger.info("event %s %s published: %s %s", event.type.value, event.id, event.source, event.subject)

    def announce(self, operation: Operation) -> None:
        """What follows the end of every job: its event. Safe to repeat (the same id each time)."""
        event = operation_event(operation, self._backup_catalog.find)
        if event is None:
            return
        crash_point("events.before_publish")
        self.publish(event)

    def schedules_missed(self, entries: list[Freshness]) -> int:
        """One ``schedule.missed`` per stale environment that can be backed up (Running or Stopped); the
        same id for every check of the same missed window, so receivers get it once."""
        now = self._clock()
        published = 0
        for entry in entries:
            if entry.status != "stale":
                continue
            environment = self._environments.find(entry.environment)
            if environment is None or environment.state not in (EnvironmentState.RUNNING, EnvironmentState.STOPPED):
                continue
            self.publish(schedule_missed_event(environment, entry.last_successful_backup, self._freshness, now))
            published += 1
        return published

    def backup_expired(self, backup: Backup) -> None:
        """Pruning forgot a backup. Pruning goes on if this fails (the backup is gone either way)."""
        try:
            self.publish(backup_expired_event(backup, self._clock()))
        except Exception:
            logger.warning("the expiry event of backup %s could not be published", backup.id, exc_info=True)
