"""The Benchmarks page's table of the backup and restore benchmarks (docs/benchmarks/index.md), made from
bench/results/backup.json and bench/results/restore.json (never typed by hand: tests/unit/test_bench_reports.py
holds the page to it).

    .venv/bin/python -m bench.backup_restore_report    # prints the table the page's "Backup and restore" shows
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.common import RESULTS

HEADER = ("Benchmark", "Baseline", "appbackups", "Ratio", "Target", "Peak memory of the worker")


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def _mib(value: float) -> str:
    return f"{value:.0f} MiB"


def verdict(ratio: float, target: str) -> str:
    """``target`` as the results state it ("<= 1.1"): the page's "≤ 1.1 — met" or "— missed"."""
    match = re.fullmatch(r"\s*<=\s*([0-9.]+)\s*", target)
    if match is None:
        raise ValueError(f"not a target: {target!r}")
    bound = float(match.group(1))
    return f"≤ {match.group(1)} — {'met' if ratio <= bound else 'missed'}"


def _row(cells: tuple[str, ...] | list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _load(results: dict[str, Any]) -> str:
    load = results.get("loadAverage")
    if not load:
        return "not recorded"
    return f"{load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end, {load['peak1min']:.1f} at most"


def table(backup: dict[str, Any], restore: dict[str, Any]) -> str:
    targets = backup["targets"]
    rows = [_row(HEADER), _row(["---"] * len(HEADER))]
    for label in ("small", "large"):
        size = backup[label]
        rows.append(
            _row(
                [
                    f"Full backup (b/a), {label}: {size['files']:,} files, {size['filesBytes'] / 1e9:.1f} GB",
                    _seconds(size["a_baselineSeconds"]),
                    _seconds(size["b_fullBackupSeconds"]),
                    f"{size['ratio_b_over_a']:.2f}",
                    verdict(size["ratio_b_over_a"], targets["ratio_b_over_a"]),
                    _mib(size["workerPeakRssMiB_b"]),
                ]
            )
        )
    for label in ("small", "large"):
        size = backup[label]
        rows.append(
            _row(
                [
                    f"Backup after 1 % new files (c/b), {label}",
                    "—",
                    _seconds(size["c_secondBackupSeconds"]),
                    f"{size['ratio_c_over_b']:.2f}",
                    verdict(size["ratio_c_over_b"], targets["ratio_c_over_b"]),
                    _mib(size["workerPeakRssMiB_c"]),
                ]
            )
        )
    for label in ("small", "large"):
        size = backup[label]
        ratio = size["c_secondBackupSeconds"] / size["d_dumpAloneSeconds"]
        rows.append(
            _row(
                [
                    f"Backup after 1 % new files against `pg_dump -Fc` into a blob alone (c/d), {label}",
                    _seconds(size["d_dumpAloneSeconds"]),
                    _seconds(size["c_secondBackupSeconds"]),
                    f"{ratio:.2f}",
                    verdict(ratio, "<= 1.15"),
                    "",
                ]
            )
        )
    small, large = backup["small"], backup["large"]
    rows.append(
        _row(
            [
                "Recording exact row counts (e/b: the dump step's counting against the whole backup), small / large",
                "—",
                f"{_seconds(small['e_rowCountSeconds'])} / {_seconds(large['e_rowCountSeconds'])}",
                f"{small['ratio_e_over_b']:.3f} / {large['ratio_e_over_b']:.3f}",
                verdict(max(small["ratio_e_over_b"], large["ratio_e_over_b"]), targets["ratio_e_over_b"]),
                "",
            ]
        )
    )
    rows.append(
        _row(
            [
                f"Restore: {restore['files']:,} files, {restore['filesBytes'] / 1e9:.1f} GB, "
                f"{restore['dumpBytes'] / 1e6:.0f} MB dump",
                _seconds(restore["baselineSeconds"]),
                _seconds(restore["restoreSeconds"]),
                f"{restore['ratio']:.2f}",
                verdict(restore["ratio"], restore["target"]["ratio"]),
                _mib(restore["workerPeakRssMiB"]),
            ]
        )
    )
    rows.append(
        _row(
            [
                "The restore's checks before its COMMIT (every table counted, every sequence compared) "
                "against the whole restore; with the two table-of-contents reads before the load",
                "—",
                f"{_seconds(restore['checkSeconds'])}; with the reads "
                f"{_seconds(restore['checkSeconds'] + restore['tocReadSeconds'])}",
                f"{restore['checkShare']:.3f}; {restore['checkAndTocShare']:.3f}",
                verdict(restore["checkShare"], restore["target"]["checkShare"]),
                "",
            ]
        )
    )
    return "\n".join(rows)


def report(backup: dict[str, Any], restore: dict[str, Any]) -> str:
    """The table, and under it the runs' repeats and the machine's load while they ran."""
    return (
        table(backup, restore)
        + "\n\n"
        + f"Medians of {backup.get('repeat', 3)} rounds (backup) and {restore.get('repeat', 3)} (restore). "
        + f"Load average (1 minute, 2 cores) during `bench.backup`: {_load(backup)}; "
        + f"during `bench.restore`: {_load(restore)}."
    )


def load(name: str, directory: Path = RESULTS) -> dict[str, Any]:
    return json.loads((directory / f"{name}.json").read_text())


if __name__ == "__main__":
    print(report(load("backup"), load("restore")))
