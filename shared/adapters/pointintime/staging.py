"""WAL fetched ahead of recovery, as CloudNativePG does around barman-cloud: barman-cloud-wal-restore
starts a Python process per segment (about a second each, docs/decisions/0009), a download here takes
milliseconds. The temporary instance's restore_command reads the stage first and falls back to
barman-cloud-wal-restore for anything not staged."""

from __future__ import annotations

import contextlib
import os
import shlex
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from shared.faults import crash_point

# restore_command's $1 is %f (the file PostgreSQL wants), $2 is %p (where it wants it). A file being
# fetched is waited for (at most 2 minutes); one known not to exist is refused without asking the archive.
_SCRIPT = """#!/bin/sh
# The restore_command of a temporary instance: a WAL file from the stage, else from the archive.
stage={stage}
[ -e "$stage/$1.absent" ] && exit 1
waited=0
while [ -e "$stage/$1.part" ] && [ "$waited" -lt 1200 ]; do sleep 0.1; waited=$((waited + 1)); done
if [ -e "$stage/$1" ] && cp "$stage/$1" "$2"; then touch "$stage/$1.used"; exit 0; fi
exec {fallback} "$1" "$2"
"""


def restore_script(stage: Path, fallback: Sequence[str]) -> str:
    """The script's text; ``fallback`` is barman-cloud-wal-restore's command without %f and %p."""
    return _SCRIPT.format(stage=shlex.quote(str(stage)), fallback=" ".join(shlex.quote(part) for part in fallback))


class Stager:
    """Keeps up to ``ahead`` unread segments of ``names`` (in the order recovery asks for them) in
    ``stage``: ``top_up`` is called while recovery runs; a segment read by recovery is deleted once a
    later one is read (the newest is read again at promotion). A failed download is simply not staged."""

    def __init__(
        self,
        stage: Path,
        names: Sequence[str],
        fetch: Callable[[str], bytes],
        *,
        owner: tuple[int, int] | None = None,
        ahead: int = 16,
        threads: int = 4,
    ) -> None:
        self._stage = stage
        self._names = list(names)
        self._position = {name: index for index, name in enumerate(self._names)}
        self._fetch = fetch
        self._owner = owner
        self._ahead = ahead
        self._next = 0
        self._pending: dict[str, Future[None]] = {}
        self._staged: set[str] = set()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="wal-stage")
        self._lock = threading.Lock()

    def mark_absent(self, name: str) -> None:
        self._own(self._stage / f"{name}.absent", create=True)

    def top_up(self) -> None:
        with self._lock:
            used = sorted(
                (name for name in self._staged if (self._stage / f"{name}.used").exists()),
                key=self._position.__getitem__,
            )
            for name in used[:-1]:
                for path in (self._stage / name, self._stage / f"{name}.used"):
                    path.unlink(missing_ok=True)
                self._staged.discard(name)
            read_up_to = self._position[used[-1]] if used else -1
            unread = sum(1 for name in self._staged if self._position[name] > read_up_to) + len(self._pending)
            while unread < self._ahead and self._next < len(self._names):
                name = self._names[self._next]
                self._next += 1
                if self._position[name] <= read_up_to:
                    continue
                self._own(self._stage / f"{name}.part", create=True)  # before the script can ask for it
                self._pending[name] = self._pool.submit(self._download, name)
                unread += 1

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for name in list(self._pending):
            (self._stage / f"{name}.part").unlink(missing_ok=True)

    def _download(self, name: str) -> None:
        part = self._stage / f"{name}.part"
        crash_point("pointintime.wal.fetching")
        try:
            content = self._fetch(name)
            with open(part, "wb") as file:
                file.write(content)
            self._own(part)
            os.rename(part, self._stage / name)
            with self._lock:
                self._staged.add(name)
        except Exception:  # not staged: the restore_command asks the archive itself
            part.unlink(missing_ok=True)
        finally:
            with self._lock:
                self._pending.pop(name, None)

    def _own(self, path: Path, *, create: bool = False) -> None:
        if create:
            path.touch()
        if self._owner is not None:
            with contextlib.suppress(OSError):
                os.chown(path, *self._owner)
