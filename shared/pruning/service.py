"""Pruning: forget expired backups and the captures of file documents gone for longer than the point-in-time
window, then reclaim the content objects no remaining backup or capture needs, by mark and sweep with a grace
period (docs/decisions/0011)."""

from __future__ import annotations

import heapq
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from shared.adapters.blobs import BlobStore
from shared.adapters.errors import BlobNotFound, StorageFault
from shared.adapters.pointintime import ArchivePruned, PointInTimeSource
from shared.backups.layout import backup_folder, read_file_list
from shared.catalog.activity import ActivityLog
from shared.catalog.backups import BackupCatalog
from shared.catalog.captures import CaptureCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.nights import NightCatalog
from shared.clock import Clock
from shared.domain import retention
from shared.domain.access import SCHEDULER
from shared.domain.activity import Action, Outcome
from shared.domain.backups import Backup, BackupStatus
from shared.domain.environments import DEFAULT_WINDOW_DAYS, Environment
from shared.dumps.store import read_chunk_index
from shared.errors import StaleRecord
from shared.faults import Fault
from shared.merges import distinct, found_in, missing_from

logger = logging.getLogger("appbackups.pruning")

_BATCH = 200
_MARK = "unreferenced.jsonl"


@dataclass
class PruneReport:
    forgotten: list[Backup] = field(default_factory=list)
    in_use: list[str] = field(default_factory=list)
    marked: dict[str, int] = field(default_factory=dict)
    swept: dict[str, int] = field(default_factory=dict)
    postponed: dict[str, str] = field(default_factory=dict)
    orphans: int = 0
    captures_forgotten: int = 0  # captures of file documents gone for longer than the window
    archives: dict[str, ArchivePruned] = field(default_factory=dict)  # per server, what left its WAL archive
    archives_failed: dict[str, str] = field(default_factory=dict)  # per server, why its archive was not pruned


class PruneService:
    def __init__(
        self,
        environments: EnvironmentCatalog,
        backup_catalog: BackupCatalog,
        nights: NightCatalog,
        activity: ActivityLog,
        backup_store: BlobStore,
        content_store: BlobStore,
        maintenance_store: BlobStore,
        clock: Clock,
        grace: timedelta,
        on_forgotten: Callable[[Backup], None] | None = None,  # each forgotten backup, e.g. its event
        captures: CaptureCatalog | None = None,  # file documents captured for point-in-time recovery
        point_in_time: PointInTimeSource | None = None,  # the servers' WAL archives, pruned to their windows
    ) -> None:
        self._point_in_time = point_in_time
        self._on_forgotten = on_forgotten
        self._captures = captures
        self._environments = environments
        self._backup_catalog = backup_catalog
        self._nights = nights
        self._activity = activity
        self._backup_store = backup_store
        self._content = content_store
        self._maintenance = maintenance_store
        self._clock = clock
        self.grace = grace

    def prune(self, namespaces_only: set[str] | None = None) -> PruneReport:
        """Prune every namespace, or only those named."""
        report = PruneReport()
        now = self._clock()
        namespaces: dict[str, list[str]] = {}
        for environment in self._environments.all():
            if namespaces_only is not None and environment.namespace not in namespaces_only:
                continue
            namespaces.setdefault(environment.namespace, []).append(environment.id)
            self._forget_expired(environment.id, now, report)
            self._forget_old_nights(environment.id, now)
            report.captures_forgotten += self._forget_old_captures(environment, now)
        for namespace, environment_ids in sorted(namespaces.items()):
            self._sweep(namespace, environment_ids, now, report)
        if namespaces_only is None:
            self._prune_archives(now, report)
        report.orphans = sum(self._remove_orphans(f"{namespace}/", now) for namespace in sorted(namespaces))
        logger.info(
            "pruned: %d expired backups forgotten, %s content objects deleted, %s marked, %d orphan blobs removed",
            len(report.forgotten),
            sum(report.swept.values()),
            sum(report.marked.values()),
            report.orphans,
        )
        return report

    # -- forget ------------------------------------------------------------------------------

    def _forget_expired(self, environment_id: str, now: datetime, report: PruneReport) -> None:
        forgotten = []
        for backup in list(self._backup_catalog.of_environment(environment_id)):
            if backup.status is BackupStatus.PROCESSING or backup.retained_until > now:
                continue
            if not retention.prunable(backup, now):
                report.in_use.append(backup.id)
                logger.info("expired backup %s is in use by %s; kept for now", backup.id, ", ".join(backup.in_use_by))
                continue
            try:
                self._backup_catalog.delete(backup)
            except StaleRecord:
                continue  # changed meanwhile (pinned, put in use): the next run decides again
            folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
            try:
                self._backup_store.delete_prefix(folder)
            except StorageFault:
                logger.warning("could not delete the data of expired backup %s; the orphan sweep will", backup.id)
            forgotten.append(backup)
            if self._on_forgotten is not None:
                self._on_forgotten(backup)
            logger.info(
                "forgot expired %s backup %s of %s (expired %s)",
                backup.tier.value,
                backup.id,
                environment_id,
                backup.retained_until,
            )
        if forgotten:
            report.forgotten.extend(forgotten)
            listed = ", ".join(f"{s.tier.value} {s.created_on:%Y-%m-%d}" for s in forgotten[:10])
            more = f" and {len(forgotten) - 10} more" if len(forgotten) > 10 else ""
            self._activity.record(
                environment_id,
                Action.PRUNE,
                Outcome.FINISHED,
                SCHEDULER,
                f"Pruned {len(forgotten)} expired backup{'s' if len(forgotten) != 1 else ''}: {listed}{more}.",
            )

    def _forget_old_nights(self, environment_id: str, now: datetime) -> None:
        """Schedule records outlive every backup they could name after 400 days."""
        horizon: date = (now - timedelta(days=400)).date()
        for record in self._nights.of_environment(environment_id):
            if record.night < horizon:
                self._nights.forget(record)

    def _forget_old_captures(self, environment: Environment, now: datetime) -> int:
        """Forget the captures no instant of the window refers to any more: of file documents gone for longer
        than the window; for an environment no longer captured (point-in-time recovery off, or deregistered),
        all of them once its last run is that old. How many were forgotten."""
        if self._captures is None:
            return 0
        point_in_time = environment.point_in_time
        window = point_in_time.window if point_in_time else timedelta(days=DEFAULT_WINDOW_DAYS)
        run = self._captures.latest_run(environment.id)
        captured = environment.registered and point_in_time is not None
        uncaptured_since = None if captured else run.ran_on if run else environment.updated_on
        forgotten = kept = 0
        for capture in list(self._captures.of_environment(environment.id)):
            until = capture.kept_until(window, uncaptured_since)
            if until is None or until > now:
                kept += 1
                continue
            try:
                self._captures.delete(capture)
                forgotten += 1
            except StaleRecord:
                kept += 1  # a capture run changed it meanwhile: the next prune decides again
        if not captured and not kept and run is not None:
            self._captures.forget_run(environment.id)
        if forgotten:
            logger.info("forgot %d captures of file documents of %s gone before the window", forgotten, environment.id)
        return forgotten

    def _prune_archives(self, now: datetime, report: PruneReport) -> None:
        """Each server's archive keeps the longest window of the environments on it, and every instant a
        backup of the past still being made reads."""
        if self._point_in_time is None:
            return
        keep_from: dict[str, datetime] = {}
        for environment in self._environments.all():
            if environment.point_in_time is None:
                continue
            server = environment.point_in_time.server
            start = now - environment.point_in_time.window
            for backup in self._backup_catalog.of_environment(environment.id):
                if backup.status is BackupStatus.PROCESSING and backup.point_in_time is not None:
                    start = min(start, backup.point_in_time)
            keep_from[server] = min(keep_from.get(server, start), start)
        for server, start in sorted(keep_from.items()):
            try:
                pruned = self._point_in_time.prune(server, start)
            except Fault as error:
                report.archives_failed[server] = str(error)
                logger.warning("could not prune the WAL archive of %s: %s", server, error)
                continue
            report.archives[server] = pruned
            if pruned.base_backups:
                logger.info(
                    "pruned the WAL archive of %s to %s: %d base backups (%s) and %d WAL files removed",
                    server,
                    start.isoformat(),
                    len(pruned.base_backups),
                    ", ".join(pruned.base_backups),
                    pruned.wal_segments,
                )

    # -- sweep -------------------------------------------------------------------------------

    def _captured(self, environment_ids: list[str]) -> list[Iterator[str]]:
        """The content objects of each environment's captures (after ``_forget_old_captures``, the ones an
        instant of the window refers to), each in name order (captures come in uuid order)."""
        if self._captures is None:
            return []
        captures = self._captures
        return [
            (capture.object for capture in captures.of_environment(environment_id))
            for environment_id in environment_ids
        ]

    def _referenced(self, backups: list[Backup], environment_ids: list[str]) -> Iterator[str]:
        """Every content object the given backups and the environments' captures need, sorted, each once: the
        file documents their file lists name, the dump chunks their chunk indexes name (each index is in name
        order), and the file documents captured for point-in-time recovery."""

        def objects(backup: Backup) -> Iterator[str]:
            return (entry.object for entry in read_file_list(self._backup_store, backup, missing_ok=True))

        def chunks(backup: Backup) -> Iterator[str]:
            folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
            return read_chunk_index(self._backup_store, folder)

        streams = [objects(backup) for backup in backups] + [chunks(backup) for backup in backups]
        return distinct(heapq.merge(*streams, *self._captured(environment_ids)))

    def _namespace_backups(self, environment_ids: list[str]) -> list[Backup]:
        return [
            backup
            for environment_id in environment_ids
            for backup in self._backup_catalog.of_environment(environment_id)
        ]

    def _busy(self, environment_ids: list[str]) -> str | None:
        for backup in self._namespace_backups(environment_ids):
            if backup.status is BackupStatus.PROCESSING:
                return f"backup {backup.id} of {backup.environment_id} is being made"
        return None

    def _sweep(self, namespace: str, environment_ids: list[str], now: datetime, report: PruneReport) -> None:
        mark_name = f"{namespace}/{_MARK}"
        mark = self._maintenance.info(mark_name)
        deleted = 0
        if mark is not None and now - datetime.fromisoformat(mark.metadata["markedOn"]) >= self.grace:
            busy = self._busy(environment_ids)  # a backup being made may be about to refer to a marked object
            if busy:
                report.postponed[namespace] = busy
                logger.info("sweep of namespace %s postponed: %s", namespace, busy)
                return  # keep the mark: it sweeps at the next quiet run
            self._note_sweep(namespace, now)
            backups = self._namespace_backups(environment_ids)
            unreferenced = missing_from(
                (blob.name for blob in self._content.list(f"{namespace}/", page_size=5000)),
                self._referenced(backups, environment_ids),
            )
            marked = (line.decode() for line in self._maintenance.read_lines(mark_name) if line.strip())
            batch: list[str] = []
            for name in found_in(unreferenced, marked):  # marked then, and still unreferenced now
                batch.append(name)
                if len(batch) >= _BATCH:
                    if self._busy(environment_ids):
                        break
                    deleted += self._delete(batch)
                    batch = []
            else:
                if batch and not self._busy(environment_ids):
                    deleted += self._delete(batch)
            report.swept[namespace] = deleted
            logger.info("swept %d unreferenced content objects of namespace %s", deleted, namespace)
        elif mark is not None:
            return  # the grace period of the current mark has not passed yet
        backups = self._namespace_backups(environment_ids)
        unreferenced_now = missing_from(
            (blob.name for blob in self._content.list(f"{namespace}/", page_size=5000)),
            self._referenced(backups, environment_ids),
        )
        # The new mark replaces the old whole (a block blob committed once): a crash leaves one or the other.
        writer = self._maintenance.writer(mark_name, block_size=4 * 1024 * 1024, parallelism=2)
        count = 0
        for name in unreferenced_now:
            writer.write(name.encode() + b"\n")
            count += 1
        writer.commit(metadata={"markedOn": now.isoformat(), "count": str(count)}, content_type="text/plain")
        report.marked[namespace] = count

    def _delete(self, names: list[str]) -> int:
        removed = 0
        for name in names:
            try:
                removed += self._content.delete(name)
            except StorageFault:
                logger.warning("could not delete content object %s; the next sweep will", name)
        return removed

    def _note_sweep(self, namespace: str, now: datetime) -> None:
        self._maintenance.put(
            f"{namespace}/last-sweep.json", json.dumps({"startedOn": now.isoformat()}).encode(), overwrite=True
        )

    def last_sweep(self, namespace: str) -> datetime | None:
        try:
            document = json.loads(self._maintenance.read_bytes(f"{namespace}/last-sweep.json"))
        except BlobNotFound:
            return None
        return datetime.fromisoformat(document["startedOn"])

    # -- orphans -----------------------------------------------------------------------------

    def _remove_orphans(self, prefix: str, now: datetime) -> int:
        """Remove the data of backups that have no catalog row (a delete that crashed half-way), once older than
        the grace period."""
        removed = 0
        known: dict[tuple[str, str], bool] = {}
        for blob in self._backup_store.list(prefix, page_size=5000):
            parts = blob.name.split("/")
            if len(parts) < 4:
                continue
            key = (parts[1], parts[2])
            if key not in known:
                known[key] = self._backup_catalog.find(*key) is not None
            if known[key] or blob.last_modified is None or now - blob.last_modified < self.grace:
                continue
            removed += self._backup_store.delete(blob.name)
            logger.info("removed orphaned backup data %s", blob.name)
        return removed
