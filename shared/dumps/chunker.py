"""Content-defined chunking of a stream with FastCDC: an insert or a delete changes only the chunks around
it. Why chunks of the uncompressed dump, and why 256 KiB: docs/decisions/0005."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fastcdc import fastcdc_cy

MIN_SIZE = 64 * 1024
AVERAGE_SIZE = 256 * 1024
MAX_SIZE = 1024 * 1024


def chunks_of(
    stream: Iterable[bytes],
    *,
    min_size: int = MIN_SIZE,
    average_size: int = AVERAGE_SIZE,
    max_size: int = MAX_SIZE,
) -> Iterator[bytes]:
    """The stream cut into content-defined chunks. Memory: a few ``max_size`` buffers."""
    window = max(64 * 1024, max_size)
    pending = b""
    for block in stream:
        pending += block
        if len(pending) < 4 * window:
            continue
        taken = 0
        cuts = fastcdc_cy.fastcdc_cy(pending, min_size, average_size, max_size)
        for chunk in cuts:
            if chunk.offset + window > len(pending):
                break  # its cut point may depend on bytes not read yet
            yield pending[chunk.offset : chunk.offset + chunk.length]
            taken = chunk.offset + chunk.length
        cuts.close()
        pending = pending[taken:]
    if pending:
        for chunk in fastcdc_cy.fastcdc_cy(pending, min_size, average_size, max_size):
            yield pending[chunk.offset : chunk.offset + chunk.length]
