"""Table Storage seam: a small row store with ETag concurrency, paging and a faithful in-memory twin.
Besides ``RowExists`` and ``RowChanged``, the Azure adapter raises only ``StorageFault`` (translated from
the SDK's exceptions). Whether a store returns rows in key order is a declared capability (``sorts_by_key``)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, TableClient, UpdateMode

from shared.adapters.errors import storage_fault, translated

_INT32 = range(-(2**31), 2**31)


class RowExists(Exception):
    """An insert found a row with the same keys."""


class RowChanged(Exception):
    """A conditional write or delete found the row changed (or gone) since it was read."""


@dataclass(frozen=True)
class Row:
    partition_key: str
    row_key: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    etag: str = ""

    def __getitem__(self, name: str) -> Any:
        return self.properties[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.properties.get(name, default)


@dataclass(frozen=True)
class RowPage:
    rows: list[Row]
    continuation: str | None


class UnsortedTable(TypeError):
    """A table that does not return rows in key order was given to code that relies on that order."""


class RowTable(Protocol):
    """What the catalog needs from a table. Implemented on Azure Tables and in memory."""

    @property
    def sorts_by_key(self) -> bool:
        """True when ``query`` returns rows in ascending (PartitionKey, RowKey) order across pages, as Azure
        Tables does; newest-first paging relies on it. A store without that order (Cosmos DB's Table API)
        says False."""

    def get(self, partition_key: str, row_key: str) -> Row | None: ...

    def insert(self, row: Row) -> Row: ...

    def replace(self, row: Row, etag: str) -> Row: ...

    def upsert(self, row: Row) -> Row: ...

    def delete(self, partition_key: str, row_key: str, etag: str | None = None) -> None:
        """Delete the row (only the version ``etag`` when given). A row that is gone is not an error."""

    def query(
        self,
        partition_key: str | None = None,
        *,
        row_key_prefix: str | None = None,
        equals: Mapping[str, Any] | None = None,
        limit: int | None = None,
        continuation: str | None = None,
    ) -> RowPage: ...


def require_sorted(table: RowTable, user: str) -> RowTable:
    """The table, when it declares that it returns rows in key order; ``user`` names what relies on it."""
    if not table.sorts_by_key:
        name = getattr(table, "name", "")
        raise UnsortedTable(
            f"{user} relies on rows coming back in key order, and the table {name!r} "
            f"({type(table).__name__}) does not declare sorts_by_key."
        )
    return table


def iterate(table: RowTable, partition_key: str | None = None, **criteria: Any) -> Iterator[Row]:
    """Every matching row, across pages."""
    continuation: str | None = None
    while True:
        page = table.query(partition_key, continuation=continuation, limit=1000, **criteria)
        yield from page.rows
        if page.continuation is None:
            return
        continuation = page.continuation


def _encode_token(token: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode()


def decode_token(token: str) -> Any:
    """Raises ValueError for a token that is not one of ours."""
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeError) as error:
        raise ValueError("malformed continuation token") from error


def _present(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Tables have no nulls: a property set to None is simply absent."""
    return {name: value for name, value in properties.items() if value is not None}


def _to_entity(row: Row) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": row.partition_key, "RowKey": row.row_key}
    for name, value in _present(row.properties).items():
        if isinstance(value, int) and not isinstance(value, bool) and value not in _INT32:
            value = EntityProperty(value, EdmType.INT64)
        entity[name] = value
    return entity


def _from_entity(entity: Mapping[str, Any], etag: str) -> Row:
    properties: dict[str, Any] = {}
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            continue
        if isinstance(value, EntityProperty):
            value = value.value
        if isinstance(value, datetime):
            value = datetime(*value.timetuple()[:6], value.microsecond, tzinfo=UTC)
        properties[name] = value
    return Row(str(entity["PartitionKey"]), str(entity["RowKey"]), properties, etag)


def _odata_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _prefix_upper_bound(prefix: str) -> str:
    return prefix + "\uffff"


class AzureRowTable:
    sorts_by_key = True  # Azure Tables (and Azurite) return entities in PartitionKey, RowKey order

    def __init__(self, client: TableClient) -> None:
        self._client = client

    @property
    def name(self) -> str:
        return self._client.table_name

    def get(self, partition_key: str, row_key: str) -> Row | None:
        try:
            entity = self._client.get_entity(partition_key, row_key)
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise storage_fault(error) from error
        return _from_entity(entity, entity.metadata["etag"])

    def insert(self, row: Row) -> Row:
        try:
            result = self._client.create_entity(_to_entity(row))
        except ResourceExistsError as error:
            raise RowExists(f"{row.partition_key}/{row.row_key}") from error
        except AzureError as error:
            raise storage_fault(error) from error
        return Row(row.partition_key, row.row_key, _present(row.properties), result["etag"])

    def replace(self, row: Row, etag: str) -> Row:
        try:
            result = self._client.update_entity(
                _to_entity(row), mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError) as error:
            raise RowChanged(f"{row.partition_key}/{row.row_key}") from error
        except AzureError as error:
            raise storage_fault(error) from error
        return Row(row.partition_key, row.row_key, _present(row.properties), result["etag"])

    def upsert(self, row: Row) -> Row:
        with translated():
            result = self._client.upsert_entity(_to_entity(row), mode=UpdateMode.REPLACE)
        return Row(row.partition_key, row.row_key, _present(row.properties), result["etag"])

    def delete(self, partition_key: str, row_key: str, etag: str | None = None) -> None:
        try:
            if etag is None:
                self._client.delete_entity(partition_key, row_key)
            else:
                self._client.delete_entity(
                    partition_key, row_key, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceModifiedError as error:
            raise RowChanged(f"{partition_key}/{row_key}") from error
        except AzureError as error:
            raise storage_fault(error) from error

    def query(
        self,
        partition_key: str | None = None,
        *,
        row_key_prefix: str | None = None,
        equals: Mapping[str, Any] | None = None,
        limit: int | None = None,
        continuation: str | None = None,
    ) -> RowPage:
        clauses: list[str] = []
        if partition_key is not None:
            clauses.append(f"PartitionKey eq {_odata_literal(partition_key)}")
        if row_key_prefix:
            clauses.append(f"RowKey ge {_odata_literal(row_key_prefix)}")
            clauses.append(f"RowKey lt {_odata_literal(_prefix_upper_bound(row_key_prefix))}")
        for name, value in (equals or {}).items():
            clauses.append(f"{name} eq {_odata_literal(value)}")
        query_filter = " and ".join(clauses)
        token = decode_token(continuation) if continuation else None
        if query_filter:
            pages = self._client.query_entities(query_filter, results_per_page=limit).by_page(continuation_token=token)
        else:
            pages = self._client.list_entities(results_per_page=limit).by_page(continuation_token=token)
        try:
            with translated():
                page = next(pages)
                rows = [_from_entity(entity, entity.metadata["etag"]) for entity in page]
        except StopIteration:
            rows = []
        next_token = pages.continuation_token
        return RowPage(rows, _encode_token(next_token) if next_token else None)


class MemoryRowTable:
    """An in-memory table with Azure Tables' ordering, ETag and paging behaviour, for unit tests."""

    sorts_by_key = True

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self._rows: dict[tuple[str, str], Row] = {}
        self._lock = threading.Lock()

    def _store(self, row: Row) -> Row:
        stored = Row(row.partition_key, row.row_key, _present(row.properties), f'W/"{uuid.uuid4()}"')
        self._rows[(row.partition_key, row.row_key)] = stored
        return stored

    def get(self, partition_key: str, row_key: str) -> Row | None:
        with self._lock:
            return self._rows.get((partition_key, row_key))

    def insert(self, row: Row) -> Row:
        with self._lock:
            if (row.partition_key, row.row_key) in self._rows:
                raise RowExists(f"{row.partition_key}/{row.row_key}")
            return self._store(row)

    def replace(self, row: Row, etag: str) -> Row:
        with self._lock:
            current = self._rows.get((row.partition_key, row.row_key))
            if current is None or current.etag != etag:
                raise RowChanged(f"{row.partition_key}/{row.row_key}")
            return self._store(row)

    def upsert(self, row: Row) -> Row:
        with self._lock:
            return self._store(row)

    def delete(self, partition_key: str, row_key: str, etag: str | None = None) -> None:
        with self._lock:
            current = self._rows.get((partition_key, row_key))
            if current is not None and etag is not None and current.etag != etag:
                raise RowChanged(f"{partition_key}/{row_key}")
            self._rows.pop((partition_key, row_key), None)

    def query(
        self,
        partition_key: str | None = None,
        *,
        row_key_prefix: str | None = None,
        equals: Mapping[str, Any] | None = None,
        limit: int | None = None,
        continuation: str | None = None,
    ) -> RowPage:
        after = tuple(decode_token(continuation)) if continuation else None
        with self._lock:
            keys = sorted(self._rows)
            matches: list[Row] = []
            for key in keys:
                if after is not None and key <= after:
                    continue
                row = self._rows[key]
                if partition_key is not None and row.partition_key != partition_key:
                    continue
                if row_key_prefix and not row.row_key.startswith(row_key_prefix):
                    continue
                if any(row.properties.get(name) != value for name, value in (equals or {}).items()):
                    continue
                matches.append(row)
                if limit is not None and len(matches) > limit:
                    break
        if limit is not None and len(matches) > limit:
            last = matches[limit - 1]
            return RowPage(matches[:limit], _encode_token([last.partition_key, last.row_key]))
        return RowPage(matches, None)
