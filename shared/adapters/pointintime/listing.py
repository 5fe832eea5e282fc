"""What barman-cloud keeps of a server in Blob Storage (``<prefix>/<server>/base/<id>/backup.info``,
``…/wals/<timeline+log>/<segment>[.gz]``), read from one listing: the base backups, the WAL segments,
and from them the recovery window and its gaps. Also a segment's content and its newest commit."""

from __future__ import annotations

import bz2
import gzip
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient

from shared.adapters.pointintime import Gap, PointInTimeError, RecoveryWindow

_SEGMENT = re.compile(r"/wals/[0-9A-F]{16}/(?P<name>[0-9A-F]{24})(?P<suffix>\.[a-z0-9]+)?$")
_WAL_FILE = re.compile(r"/wals/[0-9A-F]{16}/(?P<name>[0-9A-F]{24}(?:\.[0-9A-F]{8}\.backup)?)(?:\.[a-z0-9]+)?$")
_HISTORY = re.compile(r"/wals/(?:[0-9A-F]{16}/)?(?P<timeline>[0-9A-F]{8})\.history(?:\.[a-z0-9]+)?$")
_BACKUP_INFO = re.compile(r"/base/(?P<id>[^/]+)/backup\.info$")
_COMMIT = re.compile(r"\b(?:COMMIT|ABORT)(?:_PREPARED)? (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC\b")
_WALK_BACK = 64  # segments read, newest first, to find the last commit before an instant
_DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {".gz": gzip.decompress, ".bz2": bz2.decompress, "": bytes}


@dataclass(frozen=True)
class BaseBackup:
    id: str
    begin_wal: str
    end_wal: str
    begin_time: datetime
    end_time: datetime
    segment_size: int
    version: int
    tablespaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Segment:
    name: str
    number: int  # position in the WAL sequence, whatever the timeline
    blob: str
    suffix: str  # barman's compression: ".gz", ".bz2", … or ""
    last_modified: datetime


CommitTimes = Callable[["Segment"], datetime | None]  # the newest commit (or abort) a segment records


@dataclass(frozen=True)
class Archive:
    """What one listing of a server's folder shows: finished base backups, oldest first, and WAL
    segments from the oldest backup's first one on, in WAL order.

    Recovery to a time T stops at the first commit after T, so an instant is restorable only up to the
    last commit before missing WAL: the window ends at the archive's last commit (or at a base
    backup's end when none came after it), and a gap starts at the last commit before it."""

    server: str
    backups: tuple[BaseBackup, ...]
    segments: tuple[Segment, ...]
    timeline: int = 1  # the newest timeline the archive knows (its segments and history files)

    def window(self, last_commit: CommitTimes) -> RecoveryWindow:
        if not self.backups:
            return RecoveryWindow(None, None)
        latest = self.latest(last_commit)
        return RecoveryWindow(self.backups[0].end_time, latest, tuple(self._gaps(latest, last_commit)))

    def latest(self, last_commit: CommitTimes) -> datetime:
        size = self.backups[0].segment_size
        newest = self.segments[-1].number if self.segments else -1
        ends = [backup.end_time for backup in self.backups if segment_number(backup.end_wal, size) <= newest]
        commit = self.last_commit(last_commit)
        return max([self.backups[0].end_time, *ends, *([commit] if commit else [])])

    def last_commit(self, last_commit: CommitTimes) -> datetime | None:
        return self._last_commit_before(self.segments[-1].number + 1, last_commit) if self.segments else None

    def _last_commit_before(self, number: int, last_commit: CommitTimes) -> datetime | None:
        """The last commit in the segments before ``number``, reading at most _WALK_BACK of them."""
        earlier = [segment for segment in self.segments if segment.number < number]
        for segment in reversed(earlier[-_WALK_BACK:]):
            found = last_commit(segment)
            if found is not None:
                return found
        return None

    def _gaps(self, latest: datetime, last_commit: CommitTimes) -> Iterator[Gap]:
        """Each run of segments missing between the oldest backup's first segment and the newest one,
        until a base backup that begins after it has ended, or to the window's end when none does
        (replay cannot skip WAL)."""
        oldest = self.backups[0]
        size = oldest.segment_size
        present = {segment.number for segment in self.segments}
        expected = segment_number(oldest.begin_wal, size)
        newest = max(present, default=expected - 1)
        runs: list[tuple[int, int]] = []
        for number in (number for number in range(expected, newest + 1) if number not in present):
            if runs and runs[-1][1] == number - 1:
                runs[-1] = (runs[-1][0], number)
            else:
                runs.append((number, number))
        timeline = oldest.begin_wal[:8]
        for first, last in runs:
            commit = self._last_commit_before(first, last_commit)
            start = max(commit, oldest.end_time) if commit else oldest.end_time
            after = next((b for b in self.backups if segment_number(b.begin_wal, size) > last), None)
            names = segment_name(timeline, first, size) + (
                "" if first == last else f" … {segment_name(timeline, last, size)}"
            )
            count = last - first + 1
            missing_text = f"{count} WAL segment{'s' if count > 1 else ''} missing from the archive ({names})"
            if after is not None:
                yield Gap(start, after.end_time, f"{missing_text}; restorable again from base backup {after.id}.")
            else:
                yield Gap(start, latest, f"{missing_text}; no base backup after it.")

    def backup_before(self, instant: datetime) -> BaseBackup | None:
        finished = [backup for backup in self.backups if backup.end_time <= instant]
        return finished[-1] if finished else None


def wal_file_name(blob: str) -> str | None:
    """The WAL file a blob of the archive holds: a segment or a backup label (``<segment>.<offset>.backup``),
    without barman's compression suffix; None for a history file or anything else."""
    match = _WAL_FILE.search(blob)
    return match["name"] if match is not None else None


def _segments_per_log(size: int) -> int:
    return 0x100000000 // size


def segment_number(name: str, size: int) -> int:
    return int(name[8:16], 16) * _segments_per_log(size) + int(name[16:24], 16)


def segment_name(timeline: str, number: int, size: int) -> str:
    log, segment = divmod(number, _segments_per_log(size))
    return f"{timeline}{log:08X}{segment:08X}"


def parse_backup_info(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def read_archive(container: ContainerClient, prefix: str, server: str) -> Archive:
    """One listing of ``<prefix>/<server>/``, and the backup.info of each backup in it."""
    infos: list[str] = []
    found: list[tuple[str, str, str, datetime]] = []
    timelines = {1}
    try:
        for blob in container.list_blobs(name_starts_with=f"{prefix}/{server}/"):
            if _BACKUP_INFO.search(blob.name):
                infos.append(blob.name)
            elif (match := _SEGMENT.search(blob.name)) is not None:
                found.append((match["name"], blob.name, match["suffix"] or "", blob.last_modified))
                timelines.add(int(match["name"][:8], 16))
            elif (match := _HISTORY.search(blob.name)) is not None:
                timelines.add(int(match["timeline"], 16))
        backups = [_base_backup(name, container.download_blob(name).readall().decode()) for name in infos]
    except AzureError as error:
        raise PointInTimeError(f"The archive of {server} could not be listed: {error}", transient=True) from error
    done = sorted((backup for backup in backups if backup is not None), key=lambda backup: backup.end_time)
    if not done:
        return Archive(server, (), ())
    size = done[0].segment_size
    first = segment_number(done[0].begin_wal, size)
    segments = sorted(
        (Segment(name, segment_number(name, size), blob, suffix, modified) for name, blob, suffix, modified in found),
        key=lambda segment: (segment.number, segment.name),
    )
    kept = tuple(segment for segment in segments if segment.number >= first)
    return Archive(server, tuple(done), kept, max(timelines))


def _base_backup(blob: str, text: str) -> BaseBackup | None:
    """A finished backup from its backup.info (barman's key=value file; its times carry microseconds
    and the zone, which ``barman-cloud-backup-list --format json`` drops)."""
    info = parse_backup_info(text)
    match = _BACKUP_INFO.search(blob)
    if info.get("status") != "DONE" or match is None:
        return None
    return BaseBackup(
        id=match["id"],
        begin_wal=info["begin_wal"],
        end_wal=info["end_wal"],
        begin_time=datetime.fromisoformat(info["begin_time"]),
        end_time=datetime.fromisoformat(info["end_time"]),
        segment_size=int(info.get("xlog_segment_size") or 16 * 1024 * 1024),
        version=int(info["version"]),
        tablespaces=tuple(re.findall(r"name='([^']+)'", info.get("tablespaces") or "")),
    )


def segment_bytes(container: ContainerClient, segment: Segment) -> bytes:
    """The segment as PostgreSQL wrote it (what barman-cloud-wal-restore would give)."""
    if segment.suffix not in _DECOMPRESS:
        raise ValueError(f"barman's {segment.suffix} compression is not read here")
    return _DECOMPRESS[segment.suffix](container.download_blob(segment.blob).readall())


def newest_commit(content: bytes, name: str, bin_dir: Path, scratch_root: Path) -> datetime | None:
    """The time of the newest commit or abort the segment records (pg_waldump), or None."""
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="waldump-", dir=scratch_root) as scratch:
        (Path(scratch) / name).write_bytes(content)
        result = subprocess.run(
            [str(bin_dir / "pg_waldump"), "--path", scratch, name],
            capture_output=True,
            env={**os.environ, "TZ": "UTC"},
            timeout=120,
            check=False,
        )
    times = [datetime.fromisoformat(f"{found}+00:00") for found in _COMMIT.findall(result.stdout.decode())]
    return max(times) if times else None
