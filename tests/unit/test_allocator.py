"""After each job the worker hands its allocator's free pages back (malloc_trim): found on glibc."""

from __future__ import annotations

import platform

import pytest

from shared.adapters.allocator import release_free_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_free_memory_is_handed_back_on_glibc():
    assert release_free_memory() is True
    assert release_free_memory() is True  # looked up once, usable again
