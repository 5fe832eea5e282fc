"""Reading and damaging a backup's stored dump, whichever layout it has, as a test needs to."""

from __future__ import annotations

import zstandard

from shared.adapters.stores import Stores
from shared.backups.layout import backup_folder
from shared.domain.backups import Backup
from shared.dumps.reader import DUMP, DumpReader
from shared.dumps.store import ChunkWriter, read_chunk_list


def folder_of(backup: Backup) -> str:
    return backup_folder(backup.namespace, backup.environment_id, backup.id)


def stored_dump(stores: Stores, backup: Backup) -> bytes:
    """The backup's dump, read (and verified) through the one reader."""
    reader = DumpReader(stores.backups, stores.content, backup.namespace, folder_of(backup))
    return b"".join(reader.chunks())


def replace_dump(stores: Stores, backup: Backup, dump: bytes) -> None:
    """Store ``dump`` as the backup's dump in its own layout; the backup's recorded SHA-256 stays as it was."""
    folder = folder_of(backup)
    reader = DumpReader(stores.backups, stores.content, backup.namespace, folder)
    if not reader.chunked:
        stores.backups.put(folder + DUMP, dump, overwrite=True)
        return
    writer = ChunkWriter(stores.backups, stores.content, backup.namespace, folder)
    writer.write_all(iter([dump]))
    writer.commit()


def damage_chunk(stores: Stores, backup: Backup, *, last: bool = False) -> str:
    """Flip a byte in the middle chunk of the backup's dump — or its last, past the table of contents that
    a restore's pre-flight reads —: in its pack (the pack rewritten), or, in the layouts before, in its chunk
    object (still valid zstd) or the dump blob. Returns the name of what was damaged."""
    folder = folder_of(backup)
    reader = DumpReader(stores.backups, stores.content, backup.namespace, folder)
    if not reader.chunked:
        data = bytearray(stores.backups.read_bytes(folder + DUMP))
        data[len(data) // 2] ^= 0xFF
        stores.backups.put(folder + DUMP, bytes(data), overwrite=True)
        return folder + DUMP
    refs = list(read_chunk_list(stores.backups, folder))
    ref = refs[-1 if last else len(refs) // 2]
    name = ref.object_name(backup.namespace)
    info = stores.content.info(name)
    metadata = info.metadata if info else {}
    if ref.pack:
        pack = bytearray(stores.content.read_bytes(name))
        pack[ref.offset + ref.stored // 2] ^= 0xFF
        stores.content.put(name, bytes(pack), metadata=metadata, overwrite=True)
        return name
    content = bytearray(zstandard.ZstdDecompressor().decompress(stores.content.read_bytes(name)))
    content[len(content) // 2] ^= 0xFF
    stores.content.put(name, zstandard.ZstdCompressor().compress(bytes(content)), metadata=metadata, overwrite=True)
    return name
