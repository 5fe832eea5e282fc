"""The soak benchmark, run tiny (one backup and one restore of a few file documents, a short rest) so that it
cannot rot. It checks what the benchmark reports and that its summary is the one of its readings — never the
memory figures themselves, which are the benchmark's to report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import soak

pytestmark = pytest.mark.integration


def test_the_soak_benchmark_runs_and_writes_its_figures(tmp_path: Path) -> None:
    path = tmp_path / "soak.json"
    arguments = ["--backups", "1", "--restores", "1", "--files", "3", "--rows", "2000", "--rest-seconds", "0.2"]
    returned = soak.main([*arguments, "--results", str(path)])
    results = json.loads(path.read_text())
    assert results == returned
    assert results["benchmark"] == "soak"
    assert set(results["loadAverage"]) == {"start", "end", "peak1min"}
    assert [reading["job"] for reading in results["readings"]] == ["backup 1", "restore 1"]
    assert all(reading["seconds"] > 0 and reading["rssMiB"] > 0 for reading in results["readings"])
    resting = [reading["rssMiB"] for reading in results["readings"]]
    assert results["rssAfterFirstJobMiB"] == resting[0]
    assert results["rssMaxRestingMiB"] == max(resting)
    assert results["rssLastMiB"] == resting[-1]
    assert results["growthOverFirstMiB"] == pytest.approx(max(resting) - resting[0], abs=0.11)
    assert results["met"] == (results["growthOverFirstMiB"] <= 30)
