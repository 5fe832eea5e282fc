"""Chunked dumps on the in-memory blob store: the chunker, the chunk writer and the one verifying reader."""

import hashlib
import random

import pytest
import zstandard

from shared.adapters.blobs import MemoryBlobAccount
from shared.dumps.chunker import MAX_SIZE, MIN_SIZE, chunks_of
from shared.dumps.reader import DUMP, DumpCorrupted, DumpReader
from shared.dumps.recompress import recompressed
from shared.dumps.store import (
    ChunkRef,
    ChunkWriter,
    KnownChunks,
    StoredChunks,
    chunk_object,
    read_chunk_index,
    read_chunk_list,
)

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


def write(stores, folder: str, content: bytes, **options):
    writer = ChunkWriter(stores[0], stores[1], NAMESPACE, folder, **options)
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


def test_a_dump_is_written_once_as_chunks_in_packs_and_read_back_verified(stores):
    content = data(2_000_000)
    stats = write(stores, "a/", content, pack_size=200_000)
    refs = list(read_chunk_list(stores[0], "a/"))
    assert stats.chunks == len(refs)
    assert stats.new == len({ref.sha256 for ref in refs})
    assert stats.size == len(content) == sum(ref.size for ref in refs)
    packs = {ref.object_name(NAMESPACE) for ref in refs}
    assert stats.packs == len(packs) == stats.distinct
    assert 1 < len(packs) < len(refs)  # several chunks a pack, each pack one request
    assert list(read_chunk_index(stores[0], "a/")) == sorted(packs)
    assert all(name.startswith(f"{NAMESPACE}/packs/") for name in packs)
    assert stats.stored_size == sum(stores[1].info(name).size for name in packs) < len(content)
    assert b"".join(reader(stores, "a/", content).chunks()) == content
    known = KnownChunks(read_chunk_list(stores[0], "a/"))
    again = write(stores, "b/", content, known=known)  # the same dump again: every chunk is stored already
    assert (again.new, again.new_bytes, again.packs) == (0, 0, 0)
    assert b"".join(reader(stores, "b/", content).chunks()) == content


def test_a_chunk_the_dump_repeats_is_packed_once(stores):
    piece = data(300_000, seed=5)
    content = piece * 4  # the chunker cuts the repeats alike, past the first
    stats = write(stores, "a/", content)
    assert stats.new < stats.chunks
    assert stats.stored_size > stats.new_bytes  # the repeats counted in the dump, stored once
    assert b"".join(reader(stores, "a/", content).chunks()) == content


def test_chunks_stored_by_other_backups_are_found_and_not_packed_again(stores):
    content = data(1_500_000)
    write(stores, "a/", content)
    stored = StoredChunks([read_chunk_list(stores[0], "a/"), iter([ChunkRef("0" * 64, 1, 1, "elsewhere", 0)])])
    try:
        again = write(stores, "b/", content, known=stored)
    finally:
        stored.close()
    assert (again.new, again.packs) == (0, 0)
    assert b"".join(reader(stores, "b/", content).chunks()) == content


def test_a_damaged_chunk_fails_the_read_before_its_bytes_and_names_it(stores):
    content = data(2_000_000)
    write(stores, "a/", content)
    refs = list(read_chunk_list(stores[0], "a/"))
    victim = refs[3]
    name = victim.object_name(NAMESPACE)
    pack = bytearray(stores[1].read_bytes(name))
    pack[victim.offset + victim.stored // 2] ^= 1
    stores[1].put(name, bytes(pack), overwrite=True)
    read = bytearray()

    def consume() -> None:
        for piece in reader(stores, "a/", content).chunks():
            read.extend(piece)

    with pytest.raises(DumpCorrupted, match=f"Chunk {victim.sha256} \\(in {name} at byte {victim.offset}\\)"):
        consume()
    assert len(read) == sum(ref.size for ref in refs[:3])  # nothing of the bad chunk was given out


def test_a_chunk_of_its_own_as_backups_before_packs_stored_it_is_read_and_checked(stores):
    content = data(700_000)
    write(stores, "a/", content)
    refs = list(read_chunk_list(stores[0], "a/"))
    pack = stores[1].read_bytes(refs[0].object_name(NAMESPACE))
    lines = bytearray()
    for ref in refs:  # each chunk as an object of its own, and the list without packs, as before
        stores[1].put(chunk_object(NAMESPACE, ref.sha256), pack[ref.offset : ref.offset + ref.stored])
        lines += ChunkRef(ref.sha256, ref.size, ref.stored).to_line()
    stores[0].put("old/db.chunks", bytes(lines))
    assert b"".join(reader(stores, "old/", content).chunks()) == content
    victim = chunk_object(NAMESPACE, refs[1].sha256)
    plain = bytearray(zstandard.ZstdDecompressor().decompress(stores[1].read_bytes(victim)))
    plain[10] ^= 1
    stores[1].put(victim, zstandard.ZstdCompressor().compress(bytes(plain)), overwrite=True)
    with pytest.raises(DumpCorrupted, match=f"Chunk {victim} of the database dump does not match its SHA-256"):
        b"".join(reader(stores, "old/", content).chunks())
    stores[1].delete(victim)
    with pytest.raises(DumpCorrupted, match=f"Chunk {victim} of the database dump is missing"):
        b"".join(reader(stores, "old/").chunks())


def test_a_missing_pack_or_chunk_list_is_named(stores):
    content = data(500_000)
    write(stores, "a/", content)
    first = next(read_chunk_list(stores[0], "a/"))
    stores[1].delete(first.object_name(NAMESPACE))
    with pytest.raises(
        DumpCorrupted, match=f"in {first.object_name(NAMESPACE)} at byte 0\\) of the database dump is missing"
    ):
        b"".join(reader(stores, "a/").chunks())
    with pytest.raises(DumpCorrupted, match=r"dump nowhere/db\.backup is missing"):
        b"".join(reader(stores, "nowhere/").chunks())


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
    """The content store, counting the requests asked of it."""

    def __init__(self, store) -> None:
        self._store = store
        self.requests = 0

    def __getattr__(self, name):
        self.requests += 1
        return getattr(self._store, name)


def test_the_chunks_of_the_previous_dump_cost_no_request(stores):
    content = data(12_000_000)
    write(stores, "a/", content)
    counting = CountingStore(stores[1])
    changed = content[:8_000_000] + b"a new row\n" + content[8_000_000:]
    known = KnownChunks(read_chunk_list(stores[0], "a/"), window=64)
    writer = ChunkWriter(stores[0], counting, NAMESPACE, "b/", known=known)
    writer.write_all(blocks(changed))
    stats = writer.commit()
    assert stats.chunks > 30
    assert 1 <= stats.new <= 2  # only around the change
    assert stats.packs == counting.requests == 1  # and they go in one pack: one request for the whole dump
    assert stats.stored_size == sum(ref.stored for ref in read_chunk_list(stores[0], "b/")) > 0
    assert b"".join(reader(stores, "b/", changed).chunks()) == changed
