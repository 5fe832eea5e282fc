"""The Benchmarks page's tables (docs/benchmarks/index.md) are the ones bench/*_report.py make from the committed
results."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from bench import backup_restore_report, fleet_report, limits, limits_report, pitr_report, scale_report

PAGE = Path(__file__).resolve().parents[2] / "docs" / "benchmarks" / "index.md"


def test_the_page_shows_the_committed_scale_results() -> None:
    assert scale_report.report(scale_report.load()) in PAGE.read_text(encoding="utf-8")


def test_the_cost_model_carries_the_counts_along_the_line_through_the_two_small_sizes() -> None:
    results = scale_report.load()
    small = sorted((s for s in results["sizes"] if s["fileSizes"] == "1-4 KB"), key=lambda s: s["files"])
    assert len(small) >= 2, "the cost model needs two small-file sizes"
    planted = copy.deepcopy(results)
    for size in planted["sizes"]:
        if size["fileSizes"] == "1-4 KB":
            size["operations"]["full"]["transactions"]["copy"] = size["files"]
            size["operations"]["full"]["transactions"]["list"] = 7
    full_row = next(line for line in scale_report.cost_table(planted["sizes"]).splitlines() if "Full backup" in line)
    cells = [cell.strip() for cell in full_row.strip("|").split("|")]
    assert cells[1:3] == ["7", "1,000,000"]


def test_the_page_shows_the_committed_backup_and_restore_results() -> None:
    backup, restore = backup_restore_report.load("backup"), backup_restore_report.load("restore")
    assert backup_restore_report.report(backup, restore) in PAGE.read_text(encoding="utf-8")


def test_a_target_is_met_up_to_its_bound_and_missed_beyond_it() -> None:
    assert backup_restore_report.verdict(1.1, "<= 1.1") == "≤ 1.1 — met"
    assert backup_restore_report.verdict(1.101, "<= 1.1") == "≤ 1.1 — missed"
    assert backup_restore_report.verdict(0.049, "<= 0.05") == "≤ 0.05 — met"


def test_the_page_shows_the_committed_point_in_time_results() -> None:
    assert pitr_report.report(pitr_report.load(), pitr_report.load_captures()) in PAGE.read_text(encoding="utf-8")


def test_the_page_shows_the_committed_limits_between_its_markers() -> None:
    assert limits_report.on_page(PAGE) == limits_report.report(limits_report.load())


def test_each_fraction_is_an_operations_rate_over_the_limit_it_is_bound_by(tmp_path: Path) -> None:
    size = {
        "rows": 1000,
        "files": 50,
        "databaseBytes": 40_000_000,
        "filesBytes": 100_000_000,
        "b_fullBackupSeconds": 10.0,
        "b_filesCopied": 50,
        "d_dumpAloneSeconds": 4.0,
    }
    (tmp_path / "backup.json").write_text(json.dumps({"small": size, "large": size}))
    measured = {
        "pgDumpToDevNull": {"databaseMBps": 20.0},
        "pgDumpToBlob": {"databaseMBps": 16.0},
        "copySmallBlobs": {"blobsPerSecond": 100.0},
        "copyLargeBlob": {"MBps": 50.0},
        "upload": {"MBps": 80.0},
        "download": {"MBps": 60.0},
    }
    entries = limits.fractions(measured, tmp_path)  # no restore.json nor archive.json: left out
    small = [(entry["measure"], entry["limit"], entry["fraction"]) for entry in entries if "small" in entry["source"]]
    assert small == [
        ("database MB/s", "pgDumpToDevNull", 0.2),  # 4 MB/s of 20
        ("files/s", "copySmallBlobs", 0.05),  # 5 files/s of 100
        ("database MB/s", "pgDumpToBlob", 0.25),  # 4 MB/s of 16
        ("database MB/s", "pgDumpToBlob", 0.625),  # pg_dump alone: 10 MB/s of 16
    ]
    assert len(entries) == 8


def test_the_page_shows_the_committed_fleet_night_between_its_markers() -> None:
    assert fleet_report.on_page(PAGE) == fleet_report.report(fleet_report.load())


def test_the_fleet_table_says_whether_each_night_met_its_ratio_and_shows_it_as_measured() -> None:
    results = copy.deepcopy(fleet_report.load())
    night = results["nights"][0]
    night.update(wallSeconds=12.0, idealSeconds=10.0, ratio=1.2, finishedExactlyOnce=7)
    row = fleet_report.night_table(results).splitlines()[2]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2:6] == ["10.0 s", "12.0 s", "1.20 — met", f"7 of {results['setup']['environments']}"]
    night["ratio"] = 1.21
    assert "1.21 — missed" in fleet_report.night_table(results)
