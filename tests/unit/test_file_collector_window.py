"""The file collector's window: new file documents spread among many the previous list knows are copied side by
side, not one after the other — an incremental backup's work is its new files, at the copy concurrency."""

import threading
import uuid

from shared.adapters.blobs import MemoryBlobAccount, MemoryBlobStore
from shared.backups.files import FileCollector
from shared.backups.layout import FileEntry, content_object

KNOWN_BETWEEN = 100  # the previous list's entries between two new file documents (1 % new, as a nightly)
NEW = 24
CONCURRENCY = 8


class SlowCopies:
    """A content store whose copies wait until ``CONCURRENCY`` of them are at work at once (or a while has passed),
    recording the most that were."""

    def __init__(self, store: MemoryBlobStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._all_at_work = threading.Event()
        self.at_work = self.most_at_work = 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    def copy_from_url(self, *args, **kwargs) -> bool:
        with self._lock:
            self.at_work += 1
            self.most_at_work = max(self.most_at_work, self.at_work)
            if self.at_work >= CONCURRENCY:
                self._all_at_work.set()
        self._all_at_work.wait(timeout=0.2)
        try:
            return self._store.copy_from_url(*args, **kwargs)
        finally:
            with self._lock:
                self.at_work -= 1


def test_new_file_documents_among_known_ones_are_copied_side_by_side() -> None:
    account = MemoryBlobAccount()
    for container in ("files", "content"):
        account.create_container(container)
    source, content = MemoryBlobStore(account, "files"), SlowCopies(MemoryBlobStore(account, "content"))
    uuids = sorted(str(uuid.uuid4()) for _ in range(NEW * (KNOWN_BETWEEN + 1)))
    new = set(uuids[KNOWN_BETWEEN :: KNOWN_BETWEEN + 1])
    previous = []
    for file_uuid in uuids:
        if file_uuid in new:
            source.put("docs/" + file_uuid, file_uuid.encode())
        else:
            md5 = "0" * 32
            previous.append(FileEntry(file_uuid, 10, md5, content_object("ns", file_uuid, md5), '"etag"'))

    collector = FileCollector(source, content, "ns", concurrency=CONCURRENCY)  # type: ignore[arg-type]
    entries = list(collector.collect_incremental(iter(uuids), "docs/", iter(previous)))

    assert [entry.uuid for entry in entries] == uuids  # in order, every one
    assert collector.stats.copied == NEW
    assert content.most_at_work == CONCURRENCY  # not one at a time behind the known entries before each
