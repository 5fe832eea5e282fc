"""The in-memory table must behave like Azure Tables (Azurite) for everything the catalog relies on,
the key order it declares (``sorts_by_key``) included."""

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient, TableServiceClient

from shared.adapters.errors import StorageFault, StorageNotFound
from shared.adapters.tables import AzureRowTable, MemoryRowTable, Row, RowChanged, RowExists, iterate
from shared.catalog.codec import newest_first_key
from shared.faults import is_transient
from tools.azurite import connection_string

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "azurite"])
def table(request):
    if request.param == "memory":
        yield MemoryRowTable()
        return
    connection_string = request.getfixturevalue("storage_connection_string")
    service = TableServiceClient.from_connection_string(connection_string)
    name = "t" + uuid.uuid4().hex[:12]
    client = service.create_table(name)
    yield AzureRowTable(client)
    service.delete_table(name)


def test_insert_get_and_duplicate(table):
    stored = table.insert(Row("p", "r", {"Text": "x", "Number": 3, "Big": 2**40, "Flag": True}))
    assert stored.etag
    row = table.get("p", "r")
    assert row is not None
    assert (row["Text"], row["Number"], row["Big"], row["Flag"]) == ("x", 3, 2**40, True)
    assert row.etag == stored.etag
    assert table.get("p", "missing") is None
    with pytest.raises(RowExists):
        table.insert(Row("p", "r", {}))


def test_replace_requires_the_current_etag(table):
    first = table.insert(Row("p", "r", {"Value": "1"}))
    second = table.replace(Row("p", "r", {"Value": "2"}), first.etag)
    with pytest.raises(RowChanged):
        table.replace(Row("p", "r", {"Value": "3"}), first.etag)
    assert table.get("p", "r")["Value"] == "2"
    table.replace(Row("p", "r", {"Value": "4"}), second.etag)
    with pytest.raises(RowChanged):
        table.replace(Row("p", "gone", {}), second.etag)


def test_none_properties_are_dropped(table):
    table.insert(Row("p", "r", {"Value": None, "Other": "x"}))
    assert "Value" not in table.get("p", "r").properties


def test_delete_with_and_without_etag(table):
    stored = table.insert(Row("p", "r", {}))
    with pytest.raises(RowChanged):
        table.delete("p", "r", etag="W/\"datetime'2000-01-01T00%3A00%3A00.0000000Z'\"")
    table.delete("p", "r", etag=stored.etag)
    assert table.get("p", "r") is None
    table.delete("p", "r")  # deleting what is gone is not an error, as in the Azure SDK
    table.delete("p", "r", etag=stored.etag)


def test_query_orders_filters_and_pages(table):
    for key in ["b", "a", "c", "ab", "d"]:
        table.insert(Row("p1", key, {"Kind": "even" if key in ("a", "c") else "odd"}))
    table.insert(Row("p2", "a", {"Kind": "even"}))
    everything = [(row.partition_key, row.row_key) for row in iterate(table)]
    assert everything == [("p1", "a"), ("p1", "ab"), ("p1", "b"), ("p1", "c"), ("p1", "d"), ("p2", "a")]
    assert [row.row_key for row in iterate(table, "p1", row_key_prefix="a")] == ["a", "ab"]
    assert [(r.partition_key, r.row_key) for r in iterate(table, equals={"Kind": "even"})] == [
        ("p1", "a"),
        ("p1", "c"),
        ("p2", "a"),
    ]
    keys, token, pages = [], None, 0
    while True:
        page = table.query("p1", limit=2, continuation=token)
        keys.extend(row.row_key for row in page.rows)
        pages += 1
        token = page.continuation
        if token is None:
            break
    assert keys == ["a", "ab", "b", "c", "d"]
    assert pages >= 3


def test_a_table_that_declares_it_sorts_by_key_returns_every_query_in_key_order_across_pages(table):
    """What newest-first paging relies on: keys of different lengths and cases, newest-first keys, several
    partitions, written in random order, come back sorted by (PartitionKey, RowKey) on every query."""
    assert table.sorts_by_key is True
    start = datetime(2026, 10, 22, tzinfo=UTC)
    newest_first = [newest_first_key(start + timedelta(seconds=s)) for s in (0, 1, 59, 3600, 86400 * 400)]
    plain = ["a", "ab", "B", "b", "10", "9", "0-x", "0_x", "Z~", "a-b"]
    rows = [(partition, key) for partition in ("p1", "P1", "p10", "p9") for key in plain[:4]]
    rows += [("p1", key) for key in plain[4:] + newest_first]
    random.Random(25).shuffle(rows)
    for number, (partition, key) in enumerate(rows):
        table.insert(Row(partition, key, {"Kind": "even" if number % 2 == 0 else "odd"}))
    kinds = {(row.partition_key, row.row_key): row["Kind"] for row in iterate(table)}

    def paged(partition_key=None, **criteria):
        keys, token = [], None
        while True:
            page = table.query(partition_key, limit=3, continuation=token, **criteria)
            keys.extend((row.partition_key, row.row_key) for row in page.rows)
            token = page.continuation
            if token is None:
                return keys

    assert paged() == sorted(rows)
    assert paged("p1") == sorted(row for row in rows if row[0] == "p1")
    assert paged("p1", row_key_prefix="0") == sorted(row for row in rows if row[0] == "p1" and row[1][0] == "0")
    assert paged(equals={"Kind": "odd"}) == sorted(row for row in rows if kinds[row] == "odd")
    assert [key for _, key in paged("p1") if key in newest_first] == newest_first[::-1]  # newest first


def test_quotes_in_values_are_escaped(table):
    table.insert(Row("it's", "r", {"Name": "O'Brien"}))
    assert [row.partition_key for row in iterate(table, "it's", equals={"Name": "O'Brien"})] == ["it's"]


def test_the_azure_table_translates_other_failures_into_storage_faults(storage_connection_string):
    missing = AzureRowTable(
        TableClient.from_connection_string(storage_connection_string, "missing" + uuid.uuid4().hex[:8])
    )
    for action in (lambda: missing.query("p"), lambda: missing.upsert(Row("p", "r", {}))):
        with pytest.raises(StorageNotFound) as refused:
            action()
        assert not is_transient(refused.value)
    with pytest.raises(RowChanged):  # a conditional write on what is not there stays what it was
        missing.replace(Row("p", "r", {}), 'W/"x"')
    nothing_listens = AzureRowTable(TableClient.from_connection_string(connection_string(1, 1, 1), "t", retry_total=0))
    for action in (
        lambda: nothing_listens.get("p", "r"),
        lambda: nothing_listens.insert(Row("p", "r", {})),
        lambda: nothing_listens.upsert(Row("p", "r", {})),
        lambda: nothing_listens.delete("p", "r"),
        lambda: nothing_listens.query("p"),
    ):
        with pytest.raises(StorageFault) as down:
            action()
        assert is_transient(down.value)
        assert down.value.error_type == "ServiceRequestError"
