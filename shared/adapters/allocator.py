"""Handing freed memory back to the operating system after a job.

A job's copy and staging pools run many threads; glibc gives threads malloc arenas of their own (up to
eight per core), and memory freed inside an arena is returned to the system only from the arena's top.
Between jobs the worker's resident set therefore keeps the high-water mark of every arena, and it rose
with each job in bench/soak.py (README, "Memory across many jobs"). ``malloc_trim(0)`` returns the free
pages of every arena; elsewhere than glibc it is not there and this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Callable

logger = logging.getLogger("appbackups.memory")

_lock = threading.Lock()
_trim: Callable[[int], int] | None = None
_looked_up = False


def _malloc_trim() -> Callable[[int], int] | None:
    global _trim, _looked_up
    with _lock:
        if not _looked_up:
            _looked_up = True
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _trim = libc.malloc_trim
            except (OSError, AttributeError):
                _trim = None
        return _trim


def release_free_memory() -> bool:
    """Give the allocator's free pages back to the system; True when it could (glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
