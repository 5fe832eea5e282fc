"""The recovery benchmark, run tiny (a few thousand rows, one round, a two-second lease) so that it cannot rot:
a restore killed half-way through its load resumes on a clean host and leaves the target equal to the source.
It checks what the benchmark reports — never its timings, which are the benchmark's to report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import recovery

pytestmark = pytest.mark.integration

LEASE = 2


def test_the_recovery_benchmark_runs_and_writes_its_figures(tmp_path: Path) -> None:
    path = tmp_path / "recovery.json"
    arguments = ["--rows", "2000", "--files", "3", "--repeat", "1", "--lease", str(LEASE), "--results", str(path)]
    returned = recovery.main(arguments)
    results = json.loads(path.read_text())
    assert results == returned
    assert results["benchmark"] == "recovery"
    assert set(results["loadAverage"]) == {"start", "end", "peak1min"}
    assert results["crashPoint"] == recovery.CRASH_POINT
    assert results["leaseSeconds"] == LEASE
    assert results["boundSeconds"] == LEASE + 1 + recovery.MAX_POLLING_SECONDS
    assert results["dumpBytes"] > 0
    assert results["targetEqualsSource"] is True
    [plain] = results["runs"]["uninterrupted"]
    [killed] = results["runs"]["killed"]
    assert results["uninterruptedSeconds"] == plain > 0
    assert results["killedSeconds"] == killed["seconds"]
    # The kill came before the end, and the job resumed after it: on a second attempt of its switch step.
    assert 0 < killed["killedAfter"] < killed["seconds"]
    assert killed["resumedAfterKill"] > 0
    assert killed["switchAttempts"] >= 2
    assert results["withinBound"] == (killed["resumedAfterKill"] <= results["boundSeconds"])
