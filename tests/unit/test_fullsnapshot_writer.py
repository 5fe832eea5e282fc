import hashlib
import io
import json
import os
import subprocess
import tarfile

import pytest

from shared.archives.fullsnapshot import ChecksumMismatch, Member, metadata_document, tree_path, write_archive


def member(path, content, algorithm="md5", chunk=7000, digest=None):
    def read():
        for start in range(0, len(content), chunk):
            yield content[start : start + chunk]

    return Member(path, len(content), algorithm, digest or hashlib.new(algorithm, content).hexdigest(), read)


def test_tree_path_uses_the_first_two_pairs_of_the_uuid():
    assert tree_path("0123abcd-0000-0000-0000-000000000000") == "tree/01/23/0123abcd-0000-0000-0000-000000000000"


def test_metadata_values_are_strings():
    document = json.loads(metadata_document({"dumpSize": 12, "modelVersion": "1.0", "none": None}))
    assert document == {"dumpSize": "12", "modelVersion": "1.0", "none": ""}


def test_an_archive_round_trips_and_system_tar_reads_it(tmp_path):
    dump = os.urandom(100_000)
    files = {f"{i:02d}ab{i:02d}cd-0000-0000-0000-000000000000": os.urandom(1000 * i) for i in range(5)}
    members = [member("db/db.backup", dump, "sha256")] + [member(tree_path(u), c) for u, c in files.items()]
    sink = io.BytesIO()
    seen = []
    write_archive(sink, b'{"modelVersion": "1"}', iter(members), compress_level=1, on_member=seen.append)
    assert [m.path for m in seen] == [m.path for m in members]

    with tarfile.open(fileobj=io.BytesIO(sink.getvalue()), mode="r:gz") as archive:
        names = archive.getnames()
        assert names[0] == ".metadata"
        assert archive.extractfile("db/db.backup").read() == dump
        for file_uuid, content in files.items():
            assert archive.extractfile(tree_path(file_uuid)).read() == content
    (tmp_path / "a.tar.gz").write_bytes(sink.getvalue())
    listing = subprocess.run(["tar", "tzf", str(tmp_path / "a.tar.gz")], check=True, capture_output=True, text=True)
    assert listing.stdout.split() == names


def test_a_checksum_mismatch_stops_the_archive():
    members = [member("db/db.backup", b"x" * 50_000, "sha256", digest="0" * 64)]
    with pytest.raises(ChecksumMismatch, match="SHA256"):
        write_archive(io.BytesIO(), b"{}", iter(members), compress_level=1)


def test_a_short_or_long_member_is_caught():
    short = Member("tree/a", 10, "md5", hashlib.md5(b"12345").hexdigest(), lambda: iter([b"12345"]))
    with pytest.raises(ChecksumMismatch, match="shorter"):
        write_archive(io.BytesIO(), b"{}", iter([short]), compress_level=1)
    long = Member("tree/b", 3, "md5", hashlib.md5(b"123").hexdigest(), lambda: iter([b"12345"]))
    with pytest.raises(ChecksumMismatch, match="longer"):
        write_archive(io.BytesIO(), b"{}", iter([long]), compress_level=1)


def test_a_read_error_propagates():
    def broken():
        yield b"abc"
        raise OSError("storage went away")

    with pytest.raises(OSError, match="storage went away"):
        write_archive(io.BytesIO(), b"{}", iter([Member("tree/x", 10, "md5", "0", broken)]), compress_level=1)


def test_an_empty_member_is_verified():
    empty = member("tree/empty", b"")
    sink = io.BytesIO()
    write_archive(sink, b"{}", iter([empty]), compress_level=1)
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue()), mode="r:gz") as archive:
        assert archive.extractfile("tree/empty").read() == b""


def test_memory_stays_bounded_while_archiving_far_more_than_the_limit():
    """290 MiB through the archiver (large streamed members and many small ones read ahead) while
    Python's allocations stay under 64 MiB at their peak."""
    import tracemalloc

    template = os.urandom(1024 * 1024)

    def generated(size, seed):
        def read():
            remaining = size
            while remaining:
                piece = min(remaining, len(template))
                yield bytes(template[seed % 7 :] + template[: seed % 7])[:piece]
                remaining -= piece

        digest = hashlib.md5()
        for chunk in read():
            digest.update(chunk)
        return Member(f"tree/{seed}", size, "md5", digest.hexdigest(), read)

    members = [generated(100 * 1024 * 1024, seed) for seed in range(2)]
    members += [generated(1536 * 1024, seed) for seed in range(2, 62)]
    assert sum(m.size for m in members) > 285 * 1024 * 1024

    class Discard:
        written = 0

        def write(self, data):
            self.written += len(data)

    sink = Discard()
    tracemalloc.start()
    try:
        write_archive(sink, b"{}", iter(members), compress_level=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.written > 285 * 1024 * 1024
    assert peak < 64 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"
