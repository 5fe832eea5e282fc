"""The archive benchmark, run tiny (a few thousand rows, a few file documents, one round) so that it cannot rot.
It checks what the benchmark reports and that its figures agree with each other — never its timings, which are
the benchmark's to report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import archive
from tests.support.bench_figures import agrees_with_rounded_times

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def test_the_archive_benchmark_runs_and_writes_its_figures(tmp_path: Path) -> None:
    path = tmp_path / "archive.json"
    returned = archive.main(
        [
            "--rows",
            "2000",
            "--files",
            "5",
            "--repeat",
            "1",
            "--results",
            str(path),
        ]
    )
    results = json.loads(path.read_text())
    assert results == returned
    assert results["benchmark"] == "archive"
    assert set(results["loadAverage"]) == {"start", "end", "peak1min"}
    assert (results["rows"], results["files"]) == (2000, 5)
    assert results["archiveBytes"] > 0
    assert results["inputBytes"] > 0
    for name, seconds, throughput in (
        ("tarCzf", "tarCzfSeconds", "tarCzfMiBps"),
        ("download", "downloadSeconds", "downloadMiBps"),
        ("uploadIngest", "uploadIngestSeconds", "uploadIngestMiBps"),
    ):
        [run] = results["runs"][name]
        assert results[seconds] == run > 0
        assert results[throughput] == pytest.approx(results["inputBytes"] / MIB / run, rel=0.1, abs=0.1)
    assert agrees_with_rounded_times(
        results["ratio_download_over_tar_czf"], results["tarCzfSeconds"], results["downloadSeconds"]
    )
    assert results["workerPeakRssMiB"] > 0
