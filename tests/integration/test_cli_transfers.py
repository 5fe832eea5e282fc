"""The CLI's storage transfers against Azurite: a file larger than one block goes up as staged blocks
and a block list, and comes back identical; a failed download leaves nothing behind."""

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cli.client import ApiError
from cli.transfers import download_file, upload_file
from shared.adapters.blobs import BlobPermission

pytestmark = pytest.mark.integration


def test_a_file_of_several_blocks_goes_up_and_comes_back(storage_services, tmp_path):
    uploads = storage_services.stores.uploads
    name = f"cli-test/{uuid.uuid4()}"
    expires = datetime.now(UTC) + timedelta(minutes=10)
    source = tmp_path / "archive.tar.gz"
    source.write_bytes(os.urandom(5 * 1024 + 17))

    sent: list[int] = []
    upload_file(
        uploads.signed_url(name, BlobPermission.CREATE_WRITE, expires),
        source,
        sent.append,
        block_size=1024,
    )
    assert sent == [1024] * 5 + [17]
    assert uploads.read_bytes(name) == source.read_bytes()

    target = tmp_path / "back.tar.gz"
    received: list[int] = []
    totals: list[int | None] = []
    download_file(uploads.signed_url(name, BlobPermission.READ, expires), target, totals.append, received.append)
    assert target.read_bytes() == source.read_bytes()
    assert totals == [source.stat().st_size]
    assert sum(received) == source.stat().st_size
    assert not target.with_name("back.tar.gz.part").exists()

    missing = tmp_path / "missing.tar.gz"
    with pytest.raises(ApiError, match="download failed: 404"):
        download_file(
            uploads.signed_url(f"{name}-absent", BlobPermission.READ, expires),
            missing,
            totals.append,
            received.append,
        )
    assert set(tmp_path.iterdir()) == {source, target}
