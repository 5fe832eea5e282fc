import gzip
import io
import os
import subprocess
import zlib

import pytest

from shared.archives.pgzip import ParallelGzip, incompressible


@pytest.mark.parametrize(
    "content",
    [b"", b"tiny", os.urandom(3 * 1024 * 1024 + 17), b"abc" * 1_000_000, os.urandom(1024 * 1024)],
    ids=["empty", "tiny", "random-blocks", "repetitive", "exactly-a-block"],
)
def test_any_gzip_reader_reads_it(content, tmp_path):
    sink = io.BytesIO()
    with ParallelGzip(sink, level=6, block_size=1024 * 1024, threads=3) as stream:
        for start in range(0, len(content), 100_000):
            stream.write(content[start : start + 100_000])
    data = sink.getvalue()
    assert gzip.decompress(data) == content
    assert zlib.decompressobj(wbits=31).decompress(data) == content
    (tmp_path / "x.gz").write_bytes(data)
    assert subprocess.run(["gzip", "-t", str(tmp_path / "x.gz")], check=False).returncode == 0
    assert subprocess.run(["gzip", "-dc", str(tmp_path / "x.gz")], capture_output=True, check=True).stdout == content


def test_repetitive_input_still_compresses_across_blocks():
    content = b"the same sentence, again and again. " * 200_000
    sink = io.BytesIO()
    with ParallelGzip(sink, level=6, block_size=256 * 1024, threads=2) as stream:
        stream.write(content)
    assert len(sink.getvalue()) < len(content) / 100


def test_an_error_inside_abandons_the_stream():
    sink = io.BytesIO()

    def write_then_fail():
        with ParallelGzip(sink, threads=2) as stream:
            stream.write(b"x" * 3_000_000)
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        write_then_fail()
    with pytest.raises((EOFError, OSError, zlib.error)):
        gzip.decompress(sink.getvalue())


def test_incompressible_blocks_are_stored_not_deflated():
    content = os.urandom(4 * 1024 * 1024)
    sink = io.BytesIO()
    with ParallelGzip(sink, level=6, block_size=1024 * 1024, threads=2) as stream:
        stream.write(content)
    assert gzip.decompress(sink.getvalue()) == content
    # Stored deflate blocks cost 5 bytes per 64 KiB; deflating random data would add more and take far longer.
    assert len(sink.getvalue()) < len(content) * 1.0002


def test_the_sample_decides_per_block():
    assert incompressible(os.urandom(1024 * 1024))
    assert not incompressible(b"abc" * 400_000)
    assert not incompressible(os.urandom(1000))  # too small to judge: deflated as usual
    half_text = b"a line of text that repeats\n" * 20_000 + os.urandom(512 * 1024)
    assert not incompressible(half_text)  # the start and middle samples compress
    mixed = half_text + os.urandom(1024 * 1024) + b"tail" * 100_000  # deflated, stored, deflated blocks
    sink = io.BytesIO()
    with ParallelGzip(sink, block_size=1024 * 1024, threads=2) as stream:
        stream.write(mixed)
    assert gzip.decompress(sink.getvalue()) == mixed
    assert len(sink.getvalue()) < len(mixed) - 900_000  # the text parts did compress
