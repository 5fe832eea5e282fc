"""Content-defined chunking of a stream, with FastCDC (the ``fastcdc`` package's compiled chunker).

Cut points depend only on the bytes near them, so an insert or a delete changes the chunks around it
and none further on: the same rows dumped again give the same chunks.

What is chunked, and how big, was decided by measurement (``bench/dedup.py``, results in
``bench/results/dedup.json`` and the README's table; 300,000 rows, 14 nights of 1 % updates, 0.5 %
inserts and 0.2 % deletes on each table's newest rows):
- chunks of the *uncompressed* dump (``pg_dump --compress=0``), each compressed with zstd, stored
  2.0 and 2.05 times one ``pg_dump -Fc`` for the 14 backups (two runs), where chunks of pg_dump's own
  compressed output stored 2.67 and 2.15 times (deflate makes every byte after a table's first change
  differ, and where cuts fall in the compressed stream varies), and today's layout 13.7 times.
  Chunking pg_dump's output also degrades quickly with the chunk size (a probe of 5 nights:
  1.54 at 256 KiB, 2.34 at 1 MiB, against 1.26 and 1.33 for the uncompressed dump);
- 256 KiB on average rather than 64 KiB: each chunk is one storage request, and at 64 KiB a restore
  read four times as many and took 1.9 times as long as today's (256 KiB: 0.94 and 1.54), for storage
  of 1.9 instead of 2.0 times one dump.
Where changes are spread uniformly over a table (every row as likely), no chunk size that storage
requests allow deduplicates a dump (13.45 to 13.6 times one dump over 14 nights, either way of chunking)."""

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
