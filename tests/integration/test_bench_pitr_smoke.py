"""The point-in-time benchmark, run tiny (a few thousand rows, a few files, one restore round, a few seconds of
pgbench) so that it cannot rot: both restores bring back the same rows and files, the load ran with and without
archiving, and the recovery point was sampled. It checks what the benchmark reports — never its timings, which
are the benchmark's to report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import pitr, pitr_report
from tests.support.bench_figures import agrees_with_rounded_times

pytestmark = pytest.mark.integration

ROWS, FILES, SECONDS = 1000, 3, 4


def test_the_point_in_time_benchmark_runs_and_reports_its_three_measures(tmp_path: Path) -> None:
    path = tmp_path / "pitr.json"
    returned = pitr.main(
        [
            *("--rows", str(ROWS), "--files", str(FILES), "--rounds", "1"),
            *("--seconds", str(SECONDS), "--load-rounds", "1", "--scale", "1", "--rate", "20", "--clients", "2"),
            *("--archive-timeout", "2", "--sample-every", "1", "--results", str(path)),
        ]
    )
    results = json.loads(path.read_text())
    assert results == returned
    assert results["benchmark"] == "pitr"
    assert set(results["loadAverage"]) == {"start", "end", "peak1min"}
    restore = results["restore"]
    assert restore["byHandSeconds"] > 0
    assert restore["restoreToTimeSeconds"] > 0
    assert agrees_with_rounded_times(restore["ratio"], restore["restoreToTimeSeconds"], restore["byHandSeconds"])
    # Both went back to the instant between the first and second tick: every row, every file, one tick.
    assert restore["restored"] == {"sales$orderline": ROWS, "system$filedocument": FILES, "ticks": 1, "files": FILES}
    archiving = results["archiving"]
    assert [phase["archiving"] for phase in archiving["phases"]] == [False, True]
    assert archiving["tpsWith"] > 0
    assert archiving["tpsWithout"] > 0
    assert archiving["walBytesPerMinute"] > 0
    point = results["recoveryPoint"]
    assert point["samples"] + point["warmUpSamples"] == len(point["sampled"]) >= 1
    if point["samples"]:
        assert 0 <= point["p50Seconds"] <= point["p99Seconds"] <= point["maxSeconds"]
    assert "Restore to a point in time" in pitr_report.report(results)
