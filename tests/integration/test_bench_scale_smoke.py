"""The scale benchmark, run small (a few hundred files, one round) so that it cannot rot. It checks what
the benchmark reports, and what the counts at the transport seam say about how the work grows — never its
timings, which are the benchmark's to report."""

from __future__ import annotations

import pytest

from bench.scale import run

pytestmark = pytest.mark.integration

FILES = 300


def test_the_scale_benchmark_runs_and_counts_transactions_per_operation(tmp_path):
    results = run([FILES], rows=2000, repeat=[1], work_dir=tmp_path, idle_storage=False)
    [size] = results["sizes"]
    operations = size["operations"]
    assert set(operations) == {
        *("copyBaseline", "dumpBaseline", "restoreBaseline", "archiveBaseline"),
        *("full", "second", "restore", "prune", "archive"),
    }
    assert all(figures["seconds"] > 0 and figures["peakRssMiB"] > 0 for figures in operations.values())
    assert set(size["ratios"]) >= {
        "full_over_copyBaseline",
        "second_over_dumpBaseline",
        "restore_over_copyBaseline",
        "archive_over_archiveBaseline",
    }

    full, second, restore = (operations[name]["transactions"] for name in ("full", "second", "restore"))
    assert full["copy"] == FILES  # one server-side copy per file into the content store
    # The second backup (incremental: decision 19) copies only the 1 % new files, reads each of them by name
    # (and the container's existence), and lists nothing.
    assert second["copy"] == FILES // 100
    assert second["list"] == 0
    assert second["properties"] == FILES // 100 + 1
    # The restore: one copy per file (checked afterwards from the target's listing), no lookups of the
    # content objects one by one, and its pre-restore backup of the empty target.
    # (the meter counts every request sent, retries included: under load a timed-out copy is sent again)
    assert FILES + FILES // 100 <= restore["copy"] < 1.2 * (FILES + FILES // 100)
    assert restore["properties"] < 20
    assert restore["list"] <= 5
    assert all(figures["table"] > 0 for figures in (full, second, restore))
    # The archive reads each file document once (and the dump's few chunks), and lists nothing.
    archive = operations["archive"]["transactions"]
    assert FILES + FILES // 100 <= archive["read"] < FILES + FILES // 100 + 20
    assert archive["list"] == 0
