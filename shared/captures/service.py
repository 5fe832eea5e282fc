"""Captures of file documents: each run reads which file documents an environment's database refers to (the
query its backups use), copies the content of the new ones into the namespace's content store and notes the
ones no longer referred to; ``files_as_of`` gives a restore to an instant the file documents of that instant."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from shared.adapters.blobs import BlobStore
from shared.adapters.postgres import Databases
from shared.backups.files import FileCollector, MissingFileDocument
from shared.backups.layout import FileEntry
from shared.catalog.captures import CaptureCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain.captures import CaptureRun, FileCapture
from shared.domain.environments import Environment
from shared.errors import AlreadyExists, AppError, Conflict, StaleRecord
from shared.faults import Fault
from shared.merges import SortedStream
from shared.schedules.ncrontab import parse_schedule

logger = logging.getLogger("appbackups.captures")

LATE_RUN = timedelta(minutes=1)  # a timer may fire late, and a run takes time: slack beyond the schedule's interval
_LONGEST_LOOKAHEAD = timedelta(days=8)
_MOST_OCCURRENCES = 3000


def longest_interval(schedule: str, start: datetime) -> timedelta:
    """The longest time between two runs of ``schedule`` in the week after ``start`` (at most 3,000 runs
    are looked at: a schedule that fires that often has no long gaps worth the search)."""
    parsed = parse_schedule(schedule)
    longest = timedelta(0)
    previous = parsed.next_after(start)
    for _ in range(_MOST_OCCURRENCES):
        following = parsed.next_after(previous)
        longest = max(longest, following - previous)
        if following - start > _LONGEST_LOOKAHEAD:
            break
        previous = following
    return longest


@dataclass(frozen=True)
class CaptureReport:
    """What one run did for one environment."""

    environment_id: str
    referred: int  # file documents the database refers to
    new: int  # captured for the first time
    back: int  # referred to again after they had gone
    gone: int  # no longer referred to
    missing: int  # referred to, but their blob is not in the file store (tried again next run)
    missing_uuids: tuple[str, ...]
    copied: int  # content objects written; the other new ones were in the content store already
    seconds: float


@dataclass
class CaptureRound:
    """One run of the timer: a report per environment captured, the reason per environment that failed."""

    reports: list[CaptureReport] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class FileCaptures:
    """``interval`` is the longest time between two runs (``longest_interval`` of the schedule): a file document
    is captured at most that long (plus ``LATE_RUN``) after the database first refers to it."""

    def __init__(
        self,
        catalog: CaptureCatalog,
        environments: EnvironmentCatalog,
        databases: Databases,
        content_store: BlobStore,
        file_store: Callable[[Environment], BlobStore],
        clock: Clock,
        *,
        interval: timedelta,
        copy_concurrency: int,
    ) -> None:
        self._catalog = catalog
        self._environments = environments
        self._databases = databases
        self._content = content_store
        self._file_store = file_store
        self._clock = clock
        self._copy_concurrency = copy_concurrency
        self.slack = interval + LATE_RUN

    def captures(self, environment_id: str) -> Iterator[FileCapture]:
        """The environment's captures, in uuid order."""
        return self._catalog.of_environment(environment_id)

    def latest_run(self, environment_id: str) -> CaptureRun | None:
        """The environment's latest capture run: file documents the database referred to then are captured."""
        return self._catalog.latest_run(environment_id)

    def captured_environments(self) -> list[Environment]:
        """The registered environments with point-in-time recovery: the ones each run captures."""
        return [environment for environment in self._environments.registered() if environment.point_in_time]

    def capture_all(self) -> CaptureRound:
        """Capture every environment with point-in-time recovery; one that fails is logged and the others go on."""
        result = CaptureRound()
        for environment in self.captured_environments():
            try:
                result.reports.append(self.capture(environment))
            except (AppError, Fault) as error:
                result.failed[environment.id] = str(error)
                logger.warning("capture of the file documents of %s failed: %s", environment.id, error)
            except Exception as error:
                result.failed[environment.id] = f"{type(error).__name__}: {error}"
                logger.exception("capture of the file documents of %s failed", environment.id)
        return result

    def capture(self, environment: Environment) -> CaptureReport:
        """Compare what the database refers to now with the environment's captures: copy and record the new
        ones, mark the ones that went (``gone_on``), clear the mark of the ones referred to again."""
        if environment.point_in_time is None:
            raise Conflict(
                f"Environment {environment.id} has no point-in-time recovery; its file documents are not captured.",
                code="point_in_time_off",
            )
        started = time.monotonic()
        now = self._clock()
        previous = self._catalog.latest_run(environment.id)
        new: list[str] = []
        back: list[FileCapture] = []
        gone: list[FileCapture] = []
        referred = 0
        with self._databases.snapshot(environment.database) as view:
            captures = SortedStream(
                self._catalog.of_environment(environment.id),
                lambda capture: capture.uuid,
                on_skip=lambda capture: gone.append(capture) if capture.gone_on is None else None,
            )
            for file_uuid in view.file_document_uuids(environment.file_document_query):
                referred += 1
                capture = captures.seek(file_uuid)
                if capture is None:
                    new.append(file_uuid)
                elif capture.gone_on is not None:
                    back.append(capture)
            captures.drain()

        collector = FileCollector(
            self._file_store(environment),
            self._content,
            environment.namespace,
            concurrency=self._copy_concurrency,
        )
        added = 0
        for entry in collector.copy(iter(new), environment.files.prefix):
            added += self._add(environment, entry, now)
        returned = sum(self._change(capture, gone_on=None, last_referred=None) for capture in back)
        last_seen = previous.ran_on if previous else None
        went = sum(
            self._change(
                capture, gone_on=now, last_referred=max(last_seen or capture.first_referred, capture.first_referred)
            )
            for capture in gone
        )
        stats = collector.stats
        self._catalog.record_run(
            CaptureRun(environment.id, now, referred=referred, new=added, gone=went, missing=stats.missing)
        )
        report = CaptureReport(
            environment_id=environment.id,
            referred=referred,
            new=added,
            back=returned,
            gone=went,
            missing=stats.missing,
            missing_uuids=tuple(stats.missing_uuids),
            copied=stats.copied,
            seconds=round(time.monotonic() - started, 3),
        )
        self._log(report, previous)
        return report

    def _add(self, environment: Environment, entry: FileEntry, now: datetime) -> int:
        capture = FileCapture(
            environment_id=environment.id,
            uuid=entry.uuid,
            namespace=environment.namespace,
            object=entry.object,
            size=entry.size,
            md5=entry.md5,
            first_referred=now,
            source_etag=entry.source_etag,
        )
        try:
            self._catalog.add(capture)
        except AlreadyExists:
            return 0  # another run was first
        return 1

    def _change(self, capture: FileCapture, **changes: datetime | None) -> int:
        try:
            self._catalog.save(replace(capture, **changes))  # type: ignore[arg-type]
        except StaleRecord:
            return 0  # another run changed it meanwhile: the next run looks again
        return 1

    def _log(self, report: CaptureReport, previous: CaptureRun | None) -> None:
        if report.missing and (previous is None or previous.missing != report.missing):
            logger.warning(
                "capture of %s: %d file documents referred to by the database have no content in the file store "
                "(%s); each run tries them again",
                report.environment_id,
                report.missing,
                ", ".join(report.missing_uuids[:5]),
            )
        if report.new or report.back or report.gone:
            logger.info(
                "captured %s: %d new (%d copied), %d referred to again, %d gone, in %.3f s",
                report.environment_id,
                report.new,
                report.copied,
                report.back,
                report.gone,
                report.seconds,
            )

    def files_as_of(
        self,
        environment_id: str,
        instant: datetime,
        uuids: Iterator[str],
        on_missing: Callable[[str], None] | None = None,
    ) -> Iterator[FileEntry]:
        """The captured file documents among ``uuids`` (what the database as of ``instant`` refers to, in byte
        order), in their order: each one's content object, when a run captured it by ``instant`` plus the
        slack. Any other uuid goes to ``on_missing`` (a restore warns of it, as of a missing file); without
        ``on_missing``, it raises MissingFileDocument (the environment's missingFiles setting is fail)."""
        captures = SortedStream(self._catalog.of_environment(environment_id), lambda capture: capture.uuid)
        for file_uuid in uuids:
            capture = captures.seek(file_uuid)
            if capture is not None and capture.referred_at(instant, self.slack):
                yield FileEntry(capture.uuid, capture.size, capture.md5, capture.object, capture.source_etag)
            elif on_missing is not None:
                on_missing(file_uuid)
            else:
                raise MissingFileDocument(
                    f"File document {file_uuid} is referred to by the database as of {instant.isoformat()} but was "
                    "never captured (the environment's missingFiles setting is fail)."
                )
