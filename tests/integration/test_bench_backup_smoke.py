"""The backup benchmark, run tiny (a few thousand rows, a few dozen files, one round) so that it cannot rot.
It checks what the benchmark reports and that the counts add up — never its timings, which are the
benchmark's to report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import backup
from tests.support.bench_figures import agrees_with_rounded_times

pytestmark = pytest.mark.integration

SMALL_FILES, LARGE_FILES = 20, 30


def test_the_backup_benchmark_runs_and_writes_its_figures(tmp_path: Path) -> None:
    path = tmp_path / "backup.json"
    returned = backup.main(
        [
            *("--small-rows", "2000", "--small-files", str(SMALL_FILES)),
            *("--rows", "3000", "--files", str(LARGE_FILES)),
            *("--repeat", "1", "--results", str(path)),
        ]
    )
    results = json.loads(path.read_text())
    assert results == returned
    assert results["benchmark"] == "backup"
    assert results["repeat"] == 1
    assert set(results["loadAverage"]) == {"start", "end", "peak1min"}
    for label, files in (("small", SMALL_FILES), ("large", LARGE_FILES)):
        size = results[label]
        assert size["files"] == files
        for field in ("a_baselineSeconds", "b_fullBackupSeconds", "c_secondBackupSeconds", "d_dumpAloneSeconds"):
            assert size[field] > 0, field
            assert len(size["runs"][field[0]]) == 1
        assert agrees_with_rounded_times(size["ratio_b_over_a"], size["b_fullBackupSeconds"], size["a_baselineSeconds"])
        assert 0 < size["e_rowCountSeconds"] < size["b_fullBackupSeconds"]
        # The full backup copies every file document; the one after it only the 1 % new ones.
        assert size["b_filesCopied"] == files
        assert size["c_filesCopied"] == max(1, files // 100)
        assert size["dumpBytes"] > 0
        assert size["databaseBytes"] > 0
        assert size["filesBytes"] > 0
        assert size["workerPeakRssMiB_b"] > 0
        assert size["workerPeakRssMiB_c"] > 0
