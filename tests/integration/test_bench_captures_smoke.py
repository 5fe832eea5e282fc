"""The captures benchmark, run tiny (a few seconds, the capture timer every few seconds) so that it cannot rot:
every file document referred to is captured, and the lag is measured for each — never judged here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import captures

pytestmark = pytest.mark.integration


def test_the_captures_benchmark_runs_and_measures_every_file_documents_lag(tmp_path: Path) -> None:
    path = tmp_path / "captures.json"
    returned = captures.main(
        ["--seconds", "4", "--every", "1", "--schedule", "*/2 * * * * *", "--poll", "0.2", "--results", str(path)]
    )
    results = json.loads(path.read_text())
    assert results == returned
    assert results["benchmark"] == "captures"
    assert results["fileDocuments"] >= 3
    assert (results["captured"], results["neverCaptured"]) == (results["fileDocuments"], 0)
    lag = results["lagSeconds"]
    assert 0 < lag["min"] <= lag["p50"] <= lag["p99"] <= lag["max"]
    assert results["lastRun"] is not None
