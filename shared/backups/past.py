"""The file list of a backup of the past: the captured content of the file documents its database referred
to at the instant. Nothing is copied (a capture copied each one when the database first referred to it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Protocol

from shared.backups.files import FileStats, MissingFileDocument
from shared.backups.layout import FileEntry


class PastFiles(Protocol):
    """The captures' use case, as a backup of the past needs it: ``uuids`` in byte order in, their entries out
    in the same order; a uuid no capture holds goes to ``on_missing`` and is left out."""

    def __call__(
        self, environment_id: str, instant: datetime, uuids: Iterator[str], on_missing: Callable[[str], None]
    ) -> Iterator[FileEntry]: ...


class PastFileCollector:
    """Counts what ``PastFiles`` gives as ``FileCollector`` counts what it copies; a file document that was never
    captured is missing, as one whose blob is gone is for a backup of now (or fails it, with ``strict``)."""

    def __init__(
        self,
        past_files: PastFiles,
        environment_id: str,
        instant: datetime,
        *,
        on_progress: Callable[[FileStats], None] | None = None,
        strict: bool = False,
    ) -> None:
        self._past_files = past_files
        self._environment_id = environment_id
        self._instant = instant
        self._on_progress = on_progress
        self._strict = strict
        self.stats = FileStats()

    def _missing(self, file_uuid: str) -> None:
        if self._strict:
            raise MissingFileDocument(
                f"File document {file_uuid} is referred to by the database as of {self._instant.isoformat()} but "
                "was never captured (the environment's missingFiles setting is fail)."
            )
        self.stats.add_missing(file_uuid)

    def collect(self, uuids: Iterator[str], prefix: str, previous: Iterator[FileEntry]) -> Iterator[FileEntry]:
        """The same signature as ``FileCollector.collect``; ``prefix`` and ``previous`` play no part."""
        for entry in self._past_files(self._environment_id, self._instant, uuids, self._missing):
            self.stats.count += 1
            self.stats.size += entry.size
            if self._on_progress is not None:
                self._on_progress(self.stats)
            yield entry
