"""The CLI's storage transfers through azure-storage-blob against Azurite, through the SAS URLs the API hands
out: a file of several blocks goes up in parallel and comes back identical; what fails on the way is retried by
the SDK; an interrupted upload sends only the blocks it had not, an interrupted download fetches only what it
had not; a failed download leaves nothing behind, a corrupt one is refused."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import ExponentialRetry

from cli import transfers
from cli.client import ApiError
from cli.transfers import StaleBlocks, blob_client, download_file, upload_file
from shared.adapters.blobs import BlobPermission
from tests.support.storage_faults import StorageOutage

pytestmark = pytest.mark.integration

KIB = 1024
NO_WAIT = ExponentialRetry(initial_backoff=0, increment_base=0, random_jitter_range=0, retry_total=3)


class Interrupted(Exception):
    pass


@pytest.fixture
def uploads(storage_services):
    return storage_services.stores.uploads


@pytest.fixture
def urls(uploads):
    name = f"cli-test/{uuid.uuid4()}"
    expires = datetime.now(UTC) + timedelta(minutes=10)
    return (
        name,
        uploads.signed_url(name, BlobPermission.CREATE_WRITE, expires),
        uploads.signed_url(name, BlobPermission.READ, expires),
    )


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "archive.tar.gz"
    path.write_bytes(os.urandom(9 * KIB + 17))
    return path


def test_a_file_of_several_blocks_goes_up_in_parallel_and_comes_back(uploads, urls, source, tmp_path):
    name, write, read = urls
    sent: list[int] = []
    staged: list[int] = []
    upload_file(write, source, sent.append, block_size=KIB, concurrency=4, on_staged=staged.append)
    assert sorted(sent) == [17] + [KIB] * 9
    assert sorted(staged) == list(range(10))
    assert uploads.read_bytes(name) == source.read_bytes()

    target = tmp_path / "back.tar.gz"
    received: list[int] = []
    totals: list[int | None] = []
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    download_file(read, target, totals.append, received.append, sha256=digest)
    assert target.read_bytes() == source.read_bytes()
    assert totals == [source.stat().st_size]
    assert sum(received) == source.stat().st_size
    assert not target.with_name("back.tar.gz.part").exists()


def test_a_small_file_goes_up_in_one_put(uploads, urls, tmp_path):
    name, write, _ = urls
    small = tmp_path / "small.backup"
    small.write_bytes(b"PGDMP" + os.urandom(100))
    sent: list[int] = []
    upload_file(write, small, sent.append, block_size=KIB, on_staged=lambda index: pytest.fail("no block staged"))
    assert sent == [105]
    assert uploads.read_bytes(name) == small.read_bytes()


def test_what_fails_on_the_way_is_retried_by_the_sdk(uploads, urls, source):
    name, write, _ = urls
    outage = StorageOutage()
    container = urlsplit(write).path.split("/")[2]
    outage.fail("blob", container, times=3, methods=frozenset({"PUT"}))
    client = blob_client(write, transport=outage.wrap(RequestsTransport(), "blob"), retry_policy=NO_WAIT)
    upload_file(write, source, lambda n: None, block_size=KIB, concurrency=2, client=client)
    assert len(outage.failed) == 3
    assert uploads.read_bytes(name) == source.read_bytes()


def test_an_interrupted_upload_sends_only_the_blocks_it_had_not(uploads, urls, source):
    name, write, _ = urls
    staged: set[int] = set()

    def interrupt_after_four(count: int) -> None:
        if len(staged) >= 4:
            raise Interrupted

    with pytest.raises(Interrupted):
        upload_file(write, source, interrupt_after_four, block_size=KIB, concurrency=1, on_staged=staged.add)
    assert {0, 1, 2, 3} <= staged  # (the block being sent when it stopped, too)
    assert len(staged) < 10
    assert uploads.info(name) is None  # nothing committed yet

    sent: list[int] = []
    again: list[int] = []
    upload_file(write, source, sent.append, block_size=KIB, concurrency=3, staged=staged, on_staged=again.append)
    assert sorted(again) == sorted(set(range(10)) - staged)
    assert sum(sent) == source.stat().st_size - len(staged) * KIB
    assert uploads.read_bytes(name) == source.read_bytes()


def test_blocks_said_to_be_staged_but_gone_are_told(urls, source):
    _, write, _ = urls
    with pytest.raises(StaleBlocks):
        upload_file(write, source, lambda n: None, block_size=KIB, staged={0, 1})


def test_an_interrupted_download_fetches_only_what_it_had_not(monkeypatch, urls, source, tmp_path):
    _, write, read = urls
    upload_file(write, source, lambda n: None, block_size=KIB)
    monkeypatch.setattr(transfers, "SEGMENT", 2 * KIB)
    monkeypatch.setattr(transfers, "CHUNK", 512)
    target = tmp_path / "back.tar.gz"
    partial = target.with_name("back.tar.gz.part")
    got: list[int] = []

    def interrupt_in_the_third_segment(count: int) -> None:
        got.append(count)
        if sum(got) > 5 * KIB:
            raise Interrupted

    with pytest.raises(Interrupted):
        download_file(read, target, lambda total: None, interrupt_in_the_third_segment, concurrency=1)
    assert partial.stat().st_size > 4 * KIB
    assert not target.exists()

    resumed: list[int] = []
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    download_file(read, target, lambda total: None, resumed.append, sha256=digest, concurrency=2)
    assert resumed[0] == 4 * KIB  # the whole segments on disk, counted as done; the third fetched again
    assert sum(resumed[1:]) == source.stat().st_size - 4 * KIB
    assert target.read_bytes() == source.read_bytes()
    assert not partial.exists()


def test_a_download_whose_bytes_are_not_the_archive_is_refused(urls, source, tmp_path):
    _, write, read = urls
    upload_file(write, source, lambda n: None, block_size=KIB)
    target = tmp_path / "back.tar.gz"
    target.with_name("back.tar.gz.part").write_bytes(b"\0" * 100)  # left by something else
    with pytest.raises(ApiError, match="SHA-256 differs"):
        download_file(read, target, lambda total: None, lambda n: None, sha256=hashlib.sha256(b"x").hexdigest())
    assert list(tmp_path.iterdir()) == [source]


def test_a_failed_download_leaves_nothing_behind(uploads, tmp_path):
    expires = datetime.now(UTC) + timedelta(minutes=10)
    missing = tmp_path / "missing.tar.gz"
    with pytest.raises(ApiError, match="download failed: 404") as failed:
        download_file(
            uploads.signed_url(f"cli-test/{uuid.uuid4()}-absent", BlobPermission.READ, expires),
            missing,
            lambda total: None,
            lambda n: None,
        )
    assert failed.value.exit_code == 1
    assert list(tmp_path.iterdir()) == []
