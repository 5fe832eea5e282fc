"""How the metering transport sorts storage requests into the kinds Azure bills (list pages, copies,
writes, reads, property reads, deletes, Table and Queue operations), for Azurite's path-style URLs and
Azure's host-style ones alike."""

from __future__ import annotations

import pytest

from shared.adapters.metering import Request, StorageMeter, classify

AZURITE = "http://127.0.0.1:10000/devstoreaccount1"
AZURE = "https://acct.blob.core.windows.net"


@pytest.mark.parametrize("base", [AZURITE, AZURE])
@pytest.mark.parametrize(
    ("method", "path", "headers", "expected"),
    [
        ("GET", "/content?restype=container&comp=list&prefix=ns%2F", {}, Request("blob", "list", "content", "ns/")),
        ("PUT", "/content/ns/u/m", {"x-ms-copy-source": "https://x/y"}, Request("blob", "copy", "content")),
        ("PUT", "/snapshots/a/db.backup?comp=block&blockid=AA", {}, Request("blob", "write", "snapshots")),
        ("PUT", "/snapshots/a/db.backup?comp=blocklist", {}, Request("blob", "write", "snapshots")),
        ("PUT", "/snapshots/a/manifest.json", {}, Request("blob", "write", "snapshots")),
        ("GET", "/snapshots/a/files.jsonl", {}, Request("blob", "read", "snapshots")),
        ("HEAD", "/content/ns/u/m", {}, Request("blob", "properties", "content")),
        ("PUT", "/content/ns/u/m?comp=metadata", {}, Request("blob", "properties", "content")),
        ("GET", "/content?restype=container", {}, Request("blob", "properties", "content")),
        ("DELETE", "/files/docs/u", {}, Request("blob", "delete", "files")),
    ],
)  # fmt: skip
def test_blob_requests_by_kind(base, method, path, headers, expected):
    assert classify("blob", method, base + path, headers) == expected


def test_table_and_queue_requests_count_once_each_by_table_or_queue():
    table = "http://127.0.0.1:10002/devstoreaccount1/operations(PartitionKey='a',RowKey='b')"
    assert classify("table", "MERGE", table, {}) == Request("table", "table", "operations")
    queue = "https://acct.queue.core.windows.net/operation-work/messages"
    assert classify("queue", "POST", queue, {}) == Request("queue", "queue", "operation-work")


def test_a_measurement_counts_only_what_happened_inside_it():
    meter = StorageMeter()
    meter.record(Request("blob", "copy", "content"))
    with meter.measuring() as measured:
        meter.record(Request("blob", "copy", "content"))
        meter.record(Request("blob", "list", "files", "docs/"))
    meter.record(Request("blob", "copy", "content"))
    assert measured.count("copy") == 1
    assert measured.listed_prefixes("files") == {"docs/": 1}
    assert measured.by_kind()["list"] == 1
