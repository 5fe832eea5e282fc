"""The Benchmarks page's histories table (docs/benchmarks/index.md) is the one bench.histories_report makes from
the committed long run."""

from __future__ import annotations

from pathlib import Path

from bench import histories_report

PAGE = Path(__file__).resolve().parents[2] / "docs" / "benchmarks" / "index.md"


def test_the_page_shows_the_committed_histories_run() -> None:
    results = histories_report.load()
    assert results["secondsRun"] >= 2 * 60 * 60, "the long run of the histories ran for less than two hours"
    assert results["finished"], "the long run of the histories was stopped before its end"
    assert histories_report.report(results) in PAGE.read_text(encoding="utf-8")


def test_a_failure_of_the_run_is_named_under_the_table() -> None:
    results = histories_report.load()
    failed = {**results, "failures": [{"seed": 7, "error": "restore of b1 (manual): schema differs"}]}
    text = histories_report.report(failed)
    assert "1 failure." in text
    assert text.endswith("Failure (seed 7): restore of b1 (manual): schema differs")
