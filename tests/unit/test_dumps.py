"""Chunked dumps on the in-memory blob store: the chunker, the chunk writer and the one verifying reader."""

import hashlib
import random

import pytest
import zstandard

from shared.adapters.blobs import MemoryBlobAccount
from shared.dumps.chunker import MAX_SIZE, MIN_SIZE, chunks_of
from shared.dumps.reader import DUMP, DumpCorrupted, DumpReader
from shared.dumps.recompress import recompressed
from shared.dumps.store import ChunkWriter, KnownChunks, chunk_object, read_chunk_index, read_chunk_list

NAMESPACE = "ns"


def data(size: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(3, 12)).hex().encode() for _ in range(2000)]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=50)) + b"\n"
    return bytes(out[:size])


def blocks(content: bytes, size: int = 100_000):
    return iter([content[i : i + size] for i in range(0, len(content), size)])


@pytest.fixture
def stores():
    account = MemoryBlobAccount()
    return account.store("snapshots"), account.store("content")


def write(stores, folder: str, content: bytes):
    writer = ChunkWriter(stores[0], stores[1], NAMESPACE, folder)
    writer.write_all(blocks(content))
    return writer.commit()


def reader(stores, folder: str, content: bytes | None = None) -> DumpReader:
    return DumpReader(
        stores[0],
        stores[1],
        NAMESPACE,
        folder,
        expected_sha256=hashlib.sha256(content).hexdigest() if content is not None else None,
        expected_size=len(content) if content is not None else None,
    )


def test_the_chunks_are_the_stream_and_an_insert_changes_only_the_chunks_around_it():
    content = data(3_000_000)
    chunks = list(chunks_of(blocks(content)))
    assert b"".join(chunks) == content
    assert all(MIN_SIZE <= len(chunk) <= MAX_SIZE for chunk in chunks[:-1])
    changed = content[:1_500_000] + b"an inserted row\n" + content[1_500_000:]
    again = list(chunks_of(blocks(changed, size=77_777)))  # cut points do not depend on how the stream is read
    assert len(set(again) - set(chunks)) <= 2


def test_a_dump_is_written_once_as_chunks_and_read_back_verified(stores):
    content = data(2_000_000)
    stats = write(stores, "a/", content)
    refs = list(read_chunk_list(stores[0], "a/"))
    assert stats.chunks == len(refs)
    assert stats.new == stats.distinct == len(set(refs))
    assert stats.size == len(content) == sum(ref.size for ref in refs)
    assert list(read_chunk_index(stores[0], "a/")) == sorted({chunk_object(NAMESPACE, ref.sha256) for ref in refs})
    assert stats.stored_size < len(content)
    assert b"".join(reader(stores, "a/", content).chunks()) == content
    again = write(stores, "b/", content)  # the same dump again: every chunk is there already
    assert (again.new, again.new_bytes) == (0, 0)


def test_a_damaged_chunk_fails_the_read_before_its_bytes_and_names_it(stores):
    content = data(2_000_000)
    write(stores, "a/", content)
    refs = list(read_chunk_list(stores[0], "a/"))
    victim = chunk_object(NAMESPACE, refs[3].sha256)
    plain = bytearray(zstandard.ZstdDecompressor().decompress(stores[1].read_bytes(victim)))
    plain[10] ^= 1
    stores[1].put(victim, zstandard.ZstdCompressor().compress(bytes(plain)), overwrite=True)
    read = bytearray()

    def consume() -> None:
        for piece in reader(stores, "a/", content).chunks():
            read.extend(piece)

    with pytest.raises(DumpCorrupted, match=victim):
        consume()
    assert len(read) == sum(ref.size for ref in refs[:3])  # nothing of the bad chunk was given out


def test_a_missing_chunk_or_chunk_list_is_named(stores):
    content = data(500_000)
    write(stores, "a/", content)
    victim = chunk_object(NAMESPACE, next(read_chunk_list(stores[0], "a/")).sha256)
    stores[1].delete(victim)
    with pytest.raises(DumpCorrupted, match=f"{victim} of the database dump is missing"):
        b"".join(reader(stores, "a/").chunks())


def test_a_backup_of_one_dump_blob_is_read_and_checked_whole(stores):
    content = data(300_000)
    stores[0].put("old/" + DUMP, content)
    assert not reader(stores, "old/").chunked
    assert b"".join(reader(stores, "old/", content).chunks()) == content
    with pytest.raises(DumpCorrupted, match="SHA-256"):
        b"".join(reader(stores, "old/", content[:-1] + b"!").chunks())


def test_what_is_not_an_uncompressed_custom_dump_passes_through_unchanged():
    assert b"".join(recompressed(iter([b"not a dump at all"]))) == b"not a dump at all"
    head = b"PGDMP\x01\x0e\x00\x04\x08\x01" + b"\x00\x06\x00\x00\x00"  # compressed already (level 6)
    assert b"".join(recompressed(iter([head, b"rest"]))) == head + b"rest"


class CountingStore:
    """The content store, counting the existence checks asked of it."""

    def __init__(self, store) -> None:
        self._store = store
        self.infos = 0

    def info(self, name):
        self.infos += 1
        return self._store.info(name)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_the_chunks_of_the_previous_dump_are_not_asked_for_again(stores):
    content = data(12_000_000)
    write(stores, "a/", content)
    counting = CountingStore(stores[1])
    changed = content[:8_000_000] + b"a new row\n" + content[8_000_000:]
    known = KnownChunks(read_chunk_list(stores[0], "a/"), window=64)
    writer = ChunkWriter(stores[0], counting, NAMESPACE, "b/", known=known)
    writer.write_all(blocks(changed))
    stats = writer.commit()
    assert stats.chunks > 30
    assert counting.infos <= 6  # only around the change (and a few the threads took out of order), not 30
    assert 1 <= stats.new <= 2
    assert stats.stored_size == sum(ref.stored for ref in read_chunk_list(stores[0], "b/")) > 0
    assert b"".join(reader(stores, "b/", changed).chunks()) == changed
