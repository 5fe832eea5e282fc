"""An upload's journal: the same file to the same environment with the same comment resumes, while its URL
lasts; a changed file, another environment or comment, or an URL about to expire starts afresh."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from cli.journal import UploadJournal

NOW = datetime(2026, 10, 22, 2, 0, tzinfo=UTC)


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "snapshot.tar.gz"
    path.write_bytes(b"x" * 100)
    return path


def begun(archive, directory, expires=NOW + timedelta(hours=2), environment="demo-production", comment=""):
    journal = UploadJournal(archive, environment, comment, directory)
    journal.begin("u1", "https://account/uploads/u1?sig=secret", expires.isoformat(), 8)
    return journal


def test_a_journal_resumes_the_same_upload_with_its_staged_blocks(archive, tmp_path):
    journal = begun(archive, tmp_path / "journals")
    for index in (3, 0, 1):
        journal.record(index)
    again = UploadJournal(archive, "demo-production", "", tmp_path / "journals")
    assert again.resumable(NOW)
    assert (again.upload_id, again.upload_url, again.block_size, again.staged) == (
        "u1",
        "https://account/uploads/u1?sig=secret",
        8,
        {0, 1, 3},
    )
    assert stat.S_IMODE(again.path.stat().st_mode) == 0o600  # it holds the upload URL
    again.restart()
    assert UploadJournal(archive, "demo-production", "", tmp_path / "journals").staged == set()
    again.forget()
    assert not UploadJournal(archive, "demo-production", "", tmp_path / "journals").resumable(NOW)


def test_anything_else_starts_afresh(archive, tmp_path):
    directory = tmp_path / "journals"
    begun(archive, directory)
    assert not UploadJournal(archive, "demo-acceptance", "", directory).resumable(NOW)
    assert not UploadJournal(archive, "demo-production", "another comment", directory).resumable(NOW)
    assert not UploadJournal(archive, "demo-production", "", directory).resumable(NOW + timedelta(hours=1, minutes=55))
    archive.write_bytes(b"y" * 101)
    assert not UploadJournal(archive, "demo-production", "", directory).resumable(NOW)
    os.utime(archive, ns=(1, 1))
    begun(archive, directory)
    os.utime(archive, ns=(2, 2))  # touched: perhaps rewritten
    assert not UploadJournal(archive, "demo-production", "", directory).resumable(NOW)


def test_a_broken_journal_is_no_journal(archive, tmp_path):
    journal = begun(archive, tmp_path)
    journal.path.write_text("{not json", encoding="utf-8")
    assert not UploadJournal(archive, "demo-production", "", tmp_path).resumable(NOW)
