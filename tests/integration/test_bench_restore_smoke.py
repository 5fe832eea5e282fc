"""The restore benchmark, run tiny (a few thousand rows, a few dozen files, one round) so that it cannot rot:
its baseline reads the dump as the product stores it, and it reports what the restore's pre-commit checks
cost. It checks what the benchmark reports — never its timings, which are the benchmark's to report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import restore
from tests.support.bench_figures import agrees_with_rounded_times

pytestmark = pytest.mark.integration

ROWS, FILES, SEQUENCES = 2000, 20, 3


def test_the_restore_benchmark_runs_and_reports_the_pre_commit_checks(tmp_path: Path) -> None:
    path = tmp_path / "restore.json"
    returned = restore.main(
        [
            *("--rows", str(ROWS), "--files", str(FILES), "--sequences", str(SEQUENCES)),
            *("--repeat", "1", "--results", str(path)),
        ]
    )
    results = json.loads(path.read_text())
    assert results == returned
    assert results["benchmark"] == "restore"
    assert (results["rows"], results["files"], results["repeat"]) == (ROWS, FILES, 1)
    assert set(results["loadAverage"]) == {"start", "end", "peak1min"}
    assert results["baselineSeconds"] > 0
    assert results["restoreSeconds"] > 0
    assert agrees_with_rounded_times(results["ratio"], results["restoreSeconds"], results["baselineSeconds"])
    assert results["dumpBytes"] > 0
    assert results["workerPeakRssMiB"] > 0
    [steps] = results["restoreStepSeconds"]
    assert set(steps) == {"pre_restore_backup", "switch", "clean_up_files", "unlock"}
    # The check ran on what the restore loaded (it raises when a count or a sequence differs): every table of
    # the dump, the dataset's sequences, and the rows the backup recorded.
    [check] = results["checks"]
    assert check["sequences"] == SEQUENCES
    assert check["tables"] >= 2
    assert check["rowsChecked"] >= ROWS + FILES
    assert 0 < results["checkSeconds"] < results["restoreSeconds"]
    assert results["checkShare"] == pytest.approx(results["checkSeconds"] / results["restoreSeconds"], 0.05)
    assert results["tocReadSeconds"] > 0
