"""After each job the worker hands its allocator's free pages back (malloc_trim): found on glibc."""

from __future__ import annotations

import os
import platform
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.adapters.allocator import release_free_memory

MB = 1024 * 1024
_BLOCK = 4000  # above pymalloc's 512 bytes and below malloc's mmap threshold: from a malloc arena
_BLOCKS = 16 * 1024  # about 64 MB


def _resident() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _job_that_leaves_its_memory_free_but_resident(pinned: list[bytes]) -> None:
    """A pool thread's job: many blocks in the thread's arena, freed, under one still held above them."""
    blocks = [bytes(_BLOCK) for _ in range(_BLOCKS)]
    pinned.append(bytes(_BLOCK))  # the arena's top stays in use, so free() alone cannot shrink it
    del blocks


def _job_then_release(pinned: list[bytes]) -> tuple[int, int]:
    """Resident bytes a job's freed memory kept, and how many of them release_free_memory gave back."""
    before = _resident()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_job_that_leaves_its_memory_free_but_resident, pinned).result()
    freed = _resident()
    assert release_free_memory() is True
    return freed - before, freed - _resident()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_a_jobs_freed_memory_leaves_the_resident_set_when_released() -> None:
    pinned: list[bytes] = []
    for _ in range(2):  # malloc_trim is looked up once, and works each time
        kept, released = _job_then_release(pinned)
        assert kept >= 48 * MB, f"free() alone returned the job's memory (kept {kept / MB:.1f} MB): this proves nothing"
        assert released >= 48 * MB, f"only {released / MB:.1f} MB of the {kept / MB:.1f} MB kept went back"
