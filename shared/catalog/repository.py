"""One repository for every catalog: records of one kind in a ``RowTable``, through a codec, ETag-guarded."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, Generic, TypeVar

from shared.adapters.tables import RowChanged, RowExists, RowTable, iterate, require_sorted
from shared.catalog.codec import Codec
from shared.errors import AlreadyExists, StaleRecord

T = TypeVar("T")


class Repository(Generic[T]):
    """Reads and writes records of one kind. ``insert`` and ``save`` return the record with its new ETag
    (records written that way carry an ``etag`` field); ``save`` and ``delete`` of a record that changed
    since it was read raise ``StaleRecord``. Queries promise no order: see ``KeyOrderedRepository``."""

    def __init__(self, table: RowTable, codec: Codec[T], *, exists_code: str | None = None) -> None:
        self._table = table
        self._codec = codec
        self._exists_code = exists_code

    def load(self, partition_key: str, row_key: str) -> T | None:
        row = self._table.get(partition_key, row_key)
        return self._codec.from_row(row) if row else None

    def insert(self, record: T) -> T:
        """Raises ``AlreadyExists`` when a record with the same keys is there."""
        try:
            stored = self._table.insert(self._codec.to_row(record))
        except RowExists as error:
            raise AlreadyExists(f"{self._codec.name(record)} exists already.", code=self._exists_code) from error
        return replace(record, etag=stored.etag)

    def save(self, record: T) -> T:
        """Write only if nobody changed the record since it was read (its ETag)."""
        row = self._codec.to_row(record)
        try:
            stored = self._table.replace(row, row.etag)
        except RowChanged as error:
            raise self._stale(record) from error
        return replace(record, etag=stored.etag)

    def update(self, partition_key: str, row_key: str, change: Callable[[T], T], *, attempts: int = 8) -> T | None:
        """Apply ``change`` to the record as it is now, reading it again when another writer was first
        (up to ``attempts`` times, then ``StaleRecord``). None when there is no such record."""
        for attempt in range(attempts):
            record = self.load(partition_key, row_key)
            if record is None:
                return None
            changed = change(record)
            if changed == record:
                return record
            try:
                return self.save(changed)
            except StaleRecord:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def put(self, record: T) -> T:
        """Write whatever is there (no ETag); the record as stored."""
        return self._codec.from_row(self._table.upsert(self._codec.to_row(record)))

    def delete(self, record: T) -> None:
        """Delete the record only as it was read (its ETag). A record that is gone is not an error."""
        row = self._codec.to_row(record)
        try:
            self._table.delete(row.partition_key, row.row_key, etag=row.etag)
        except RowChanged as error:
            raise self._stale(record) from error

    def remove(self, partition_key: str, row_key: str) -> None:
        """Delete by key, whatever its version."""
        self._table.delete(partition_key, row_key)

    def all(
        self,
        partition_key: str | None = None,
        *,
        row_key_prefix: str | None = None,
        equals: Mapping[str, Any] | None = None,
    ) -> Iterator[T]:
        """Every matching record (of one partition, when given), in no promised order."""
        rows = iterate(self._table, partition_key, row_key_prefix=row_key_prefix, equals=equals)
        return (self._codec.from_row(row) for row in rows)

    def _stale(self, record: T) -> StaleRecord:
        return StaleRecord(f"{self._codec.name(record)} was changed by another request; read it again and retry.")


class KeyOrderedRepository(Repository[T]):
    """A repository whose queries (``all`` too) return records in key order, which newest-first row keys
    make newest first. Refuses (``UnsortedTable``) a table that does not declare ``sorts_by_key``."""

    def __init__(self, table: RowTable, codec: Codec[T], *, exists_code: str | None = None) -> None:
        super().__init__(require_sorted(table, "Newest-first paging"), codec, exists_code=exists_code)

    def first(
        self,
        partition_key: str,
        *,
        equals: Mapping[str, Any] | None = None,
        where: Callable[[T], bool] | None = None,
    ) -> T | None:
        """The first matching record in key order (the newest, with newest-first keys); ``where`` tests what
        the table cannot filter on."""
        continuation: str | None = None
        while True:  # a filtered page may come back empty but with a continuation: read on
            page = self._table.query(
                partition_key, equals=equals, limit=1 if where is None else 50, continuation=continuation
            )
            for row in page.rows:
                record = self._codec.from_row(row)
                if where is None or where(record):
                    return record
            if page.continuation is None:
                return None
            continuation = page.continuation

    def page(self, partition_key: str, *, limit: int, continuation: str | None) -> tuple[list[T], str | None]:
        """Up to ``limit`` records in key order, and the token of the next page (None after the last)."""
        page = self._table.query(partition_key, limit=limit, continuation=continuation)
        return [self._codec.from_row(row) for row in page.rows], page.continuation
