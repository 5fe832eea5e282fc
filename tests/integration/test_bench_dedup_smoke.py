"""The deduplicated-dumps benchmark, run tiny (a few thousand rows, two nights, one round) so that it cannot rot.
It checks what the benchmark reports and that its storage figures add up — never its timings, which are the
benchmark's to report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import dedup

pytestmark = pytest.mark.integration

NIGHTS = 2


def test_the_dedup_benchmark_runs_and_writes_its_figures(tmp_path: Path) -> None:
    path = tmp_path / "dedup.json"
    arguments = ["--rows", "2000", "--files", "3", "--nights", str(NIGHTS), "--repeat", "1", "--results", str(path)]
    returned = dedup.main(arguments)
    results = json.loads(path.read_text())
    assert results == returned
    assert results["benchmark"] == "dedup"
    assert set(results["loadAverage"]) == {"start", "end", "peak1min"}
    assert results["nights"] == NIGHTS
    # One night's changes between each two nights, each of them something.
    assert len(results["changes"]) == NIGHTS - 1
    assert all(night["updated"] and night["inserted"] and night["deleted"] for night in results["changes"])
    storage = results["storage"]
    # Today every night stores a whole dump; the chunks of every night are stored once each.
    assert storage["ratioToday"] == pytest.approx(NIGHTS, rel=0.1)
    assert storage["ratioOurs"] == pytest.approx(storage["oursBytes"] / storage["oneDumpBytes"], abs=0.001)
    assert len(results["runs"]["storedChunkBytesPerSnapshotOurs"]) == NIGHTS
    assert sum(results["runs"]["storedChunkBytesPerSnapshotOurs"]) <= storage["oursBytes"]
    for name, seconds in results["seconds"].items():
        assert seconds > 0, name
        assert len(results["runs"][name]) == (NIGHTS if name.startswith("backup") else 1)
    assert results["sizes"]["databaseDownloadToday"] == results["sizes"]["pgDumpBytes"]
    uniform = results["uniformModel"]
    assert uniform["ratioToday"] == NIGHTS
    assert uniform["ratioUncompressedChunks"] > 0
    assert uniform["ratioCompressedChunks"] > 0
