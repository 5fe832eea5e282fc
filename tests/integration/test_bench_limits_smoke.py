"""The limits benchmark, run tiny (a few thousand rows, a few small blobs, a 2 MB blob, one round) so that it
cannot rot. It checks what the benchmark reports and that each rate and fraction is the one of its figures —
never the rates themselves, which are the benchmark's to report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import limits
from bench.common import RESULTS

pytestmark = pytest.mark.integration

SMALL_BLOBS, LARGE_MB = 20, 2


def test_the_limits_benchmark_runs_and_writes_its_figures(tmp_path: Path, storage_connection_string: str) -> None:
    path = tmp_path / "limits.json"
    arguments = ["--rows", "2000", "--small-blobs", str(SMALL_BLOBS), "--large-mb", str(LARGE_MB), "--repeat", "1"]
    returned = limits.main([*arguments, "--results", str(path), "--storage", storage_connection_string])
    results = json.loads(path.read_text())
    assert results == returned
    assert results["benchmark"] == "limits"
    assert set(results["loadAverage"]) == {"start", "end", "peak1min"}
    assert results["databaseBytes"] > results["dumpBytes"] > 0
    assert results["smallBlobs"] == SMALL_BLOBS
    assert results["largeBlobBytes"] == LARGE_MB * limits.MB
    measured = results["limits"]
    assert set(measured) == {"pgDumpToDevNull", "pgDumpToBlob", "copySmallBlobs", "copyLargeBlob", "upload", "download"}
    assert all(len(runs) == 1 and runs[0] > 0 for runs in results["runs"].values())
    for name in ("pgDumpToDevNull", "pgDumpToBlob"):
        seconds = measured[name]["seconds"]
        assert measured[name]["databaseMBps"] == pytest.approx(results["databaseBytes"] / 1e6 / seconds, rel=0.01)
        assert measured[name]["dumpMBps"] == pytest.approx(results["dumpBytes"] / 1e6 / seconds, rel=0.05, abs=0.1)
    small = measured["copySmallBlobs"]
    assert small["blobsPerSecond"] == pytest.approx(SMALL_BLOBS / small["seconds"], rel=0.01)
    # The fractions are of the committed results of the other benchmarks, against this run's limits.
    assert results["fractions"] == limits.fractions(measured, RESULTS)
    sources = {entry["source"].split()[0] for entry in results["fractions"]}
    assert sources == {"backup.json", "restore.json", "archive.json"}
    for entry in results["fractions"]:
        assert entry["limitValue"] > 0
        assert entry["fraction"] == pytest.approx(entry["reached"] / entry["limitValue"], rel=0.01, abs=0.001)
