"""What a person reads: short ids that tell a day's backups apart and name them back, a compact list that keeps
to 80 columns whatever the data, sizes and times in words. The documents are the API's own (its contract models
from domain objects), wrapped as the CLI reads them."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from cli import ids
from cli.api.shapes import BackupView as BackupShape
from cli.documents import Document
from cli.render.backups import backup_view, backups_table, state
from cli.render.units import duration, moment, size, stamp
from shared.contracts.backups import BackupView
from shared.domain.backups import Actor, Backup, BackupStatus, Tier, new_backup_id
from shared.domain.verification import Check, CheckStatus, Verification, VerificationStatus

NOW = datetime(2026, 10, 22, 14, 30, tzinfo=UTC)
COMMENTS = ["", "nightly", "before the release of 4.2 — with the customers' invoices migrated twice", "x" * 500]


def document(backup: Backup) -> BackupShape:
    return Document(BackupView.of(backup, now=NOW).model_dump(mode="json", by_alias=True), BackupShape)  # type: ignore[return-value]


def a_backup(created: datetime, rng: random.Random, **changes) -> Backup:
    tier = rng.choice(list(Tier))
    status = rng.choice([BackupStatus.FINISHED] * 6 + [BackupStatus.FAILED, BackupStatus.CANCELLED])
    fields = {
        "id": new_backup_id(created),
        "environment_id": "contoso-production-westeurope",
        "namespace": "contoso",
        "status": status,
        "tier": tier,
        "created_on": created,
        "expires_on": created + timedelta(days=rng.choice([7, 30, 365])),
        "created_by": Actor("p1", "Ada Lovelace"),
        "comment": rng.choice(COMMENTS),
        "finished_on": created + timedelta(seconds=rng.randint(5, 5000)) if status is BackupStatus.FINISHED else None,
        "dump_size": rng.choice([None, 900, 48_000_000, 7 * 1024**3]),
        "database_size": rng.choice([None, 12 * 1024**3]),
        "file_count": rng.choice([None, 0, 12, 1_250_000]),
        "files_size": rng.choice([None, 0, 987_654_321_012]),
        "files_copied": 3,
        "missing_files": rng.choice([0, 0, 0, 2]),
        "missing_file_uuids": ("a", "b"),
        "server_version": 160004,
    }
    return Backup(**{**fields, **changes})


def day_of_backups(count: int, seed: int = 7) -> list[BackupShape]:
    """``count`` backups in one day, newest first: their ids share their first characters."""
    rng = random.Random(seed)
    start = NOW.replace(hour=0, minute=0)
    made = sorted((start + timedelta(seconds=rng.randint(0, 86_399)) for _ in range(count)), reverse=True)
    return [document(a_backup(created, rng)) for created in made]


def rendered(renderable, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, file=open("/dev/null", "w"), markup=False)  # noqa: SIM115
    console.print(renderable)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_a_days_ids_share_their_start_and_are_told_apart_by_their_end():
    items = day_of_backups(400)
    full = [item["id"] for item in items]
    assert len({each[:5] for each in full}) <= 2  # the same day: today's list shows fe5db… for every row
    short = ids.short_ids(full)
    assert len(set(short.values())) == len(full)
    assert {len(each) for each in short.values()} == {ids.MINIMUM}
    for each in full:
        assert ids.resolve(short[each], full) == each
        assert ids.resolve(short[each].upper(), full) == each


def test_a_short_id_grows_until_it_tells_the_ids_apart():
    alike = ["00000000-0000-8000-8000-00000abcdef1", "00000000-0000-8000-8000-00001abcdef1", "x-2"]
    assert ids.short_length(alike) == 8  # their last 7 are alike
    assert ids.short_ids(alike)[alike[0]] == "0abcdef1"
    assert ids.short_length(["one"]) == ids.MINIMUM


def test_resolving_a_reference_names_one_backup_or_says_why_not():
    full = ["fe5db1c2-0000-8000-8000-000000c41f9a", "fe5db1c2-1111-8000-8000-0000001f9a22"]
    assert ids.resolve("c41f9a", full) == full[0]
    assert ids.resolve("…c41f9a", full) == full[0]
    assert ids.resolve("fe5db1c2-1111", full) == full[1]  # a start will do
    assert ids.resolve(full[1].upper(), []) == full[1]  # a whole id needs no listing
    with pytest.raises(ids.Ambiguous, match="'fe5db' names 2 backups"):
        ids.resolve("fe5db", full)
    with pytest.raises(ids.NoSuchBackup, match="no backup id ends"):
        ids.resolve("abcdef", full)
    with pytest.raises(ids.NoSuchBackup, match="not a backup id"):
        ids.resolve("9a", full)  # too short to mean anything
    with pytest.raises(ids.NoSuchBackup, match="not a backup id"):
        ids.resolve("nightly", full)


@pytest.mark.parametrize("seed", range(5))
def test_the_compact_list_keeps_to_80_columns_one_line_per_backup(seed):
    items = day_of_backups(60, seed)
    lines = rendered(backups_table(items, width=80, now=NOW))
    assert max(len(line) for line in lines) <= 80
    assert len(lines) == 1 + len(items)
    short = ids.short_ids([item["id"] for item in items])
    for line, item in zip(lines[1:], items, strict=True):
        assert line.startswith(short[item["id"]] + "  ")
        assert state(item) in line
        if len(item["comment"]) > 20:
            assert line.endswith("…")


def test_the_wide_list_has_every_column_and_whole_ids():
    items = day_of_backups(3)
    lines = rendered(backups_table(items, wide=True, now=NOW), width=400)
    assert lines[0].split() == [
        "id", "status", "verified", "tier", "created", "kept", "until", "database", "files", "comment",
    ]  # fmt: skip
    assert all(item["id"] in text for item, text in zip(items, lines[1:], strict=True))


def test_a_finished_backups_state_says_what_its_drill_found():
    rng = random.Random(1)
    check = Check("checksums", CheckStatus.PASSED, "12 chunks match")
    drill = Verification(VerificationStatus.PASSED, "d1", NOW, NOW, 12.5, checks=(check,))
    verified = document(a_backup(NOW, rng, status=BackupStatus.FINISHED, verification=drill))
    assert state(verified) == "verified"
    failed = document(a_backup(NOW, rng, status=BackupStatus.FAILED, finished_on=None))
    assert state(failed) == "Failed"
    warned = document(a_backup(NOW, rng, status=BackupStatus.FINISHED, missing_files=1, missing_file_uuids=("u",)))
    assert state(warned) == "warnings"


def test_show_says_sizes_and_times_in_words(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Amsterdam")
    time.tzset()
    try:
        rng = random.Random(3)
        check = Check("row_counts", CheckStatus.PASSED, "2 tables, 7 rows as recorded")
        drill = Verification(VerificationStatus.PASSED, "d1", NOW, NOW + timedelta(minutes=3), 95.0, checks=(check,))
        backup = a_backup(
            NOW - timedelta(hours=3),
            rng,
            status=BackupStatus.FINISHED,
            finished_on=NOW - timedelta(hours=3) + timedelta(seconds=75),
            dump_size=7 * 1024**3,
            database_size=12 * 1024**3,
            file_count=1_250_000,
            files_size=987_654_321_012,
            table_count=48,
            row_count=12_345_678,
            verification=drill,
        )
        text = "\n".join(rendered(backup_view(document(backup), now=NOW)))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert "created       2026-10-22 13:30 CEST (11:30 UTC), 3 h 00 min ago, by Ada Lovelace" in text
    assert "took          1 min 15 s" in text
    assert "database      dump 7.0 GiB (12.0 GiB on the server), PostgreSQL 16.4" in text
    assert "tables        48, with 12,345,678 rows" in text
    assert "files         1,250,000 documents, 919.8 GiB" in text
    assert "the dump loaded in 1 min 35 s" in text
    assert "row_counts" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_units():
    assert [size(n) for n in (None, 0, 1023, 1024, 5 * 1024**2 + 1, 3 * 1024**4)] == [
        "-", "0 B", "1023 B", "1.0 KiB", "5.0 MiB", "3.0 TiB",
    ]  # fmt: skip
    assert [duration(s) for s in (0.4, 59, 61, 3600 * 5 + 60, 3600 * 72)] == [
        "0 s", "59 s", "1 min 01 s", "5 h 01 min", "3 days",
    ]  # fmt: skip
    assert stamp(None) == "-"
    assert len(stamp("2026-10-22T02:00:00Z", NOW)) == len(stamp("2024-01-02T02:00:00Z", NOW)) == 12
    assert stamp("2024-01-02T02:00:00+00:00", NOW).endswith("2024")
    assert moment("2026-10-23T14:30:00+00:00", NOW).endswith("in 24 h 00 min")
