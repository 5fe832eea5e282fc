"""The Benchmarks page's table of the point-in-time benchmark (docs/benchmarks/index.md), made from
bench/results/pitr.json (never typed by hand: tests/unit/test_bench_reports.py holds the page to it).

    .venv/bin/python -m bench.pitr_report    # prints what the page's "Point in time" section shows
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.common import RESULTS

HEADER = ("Measure", "Baseline", "appbackups", "Ratio", "Target")


def verdict(value: float, target: str) -> str:
    """``target`` as the results state it ("<= 1.2", ">= 0.95"): "≤ 1.2 — met", "≥ 0.95 — missed"."""
    match = re.fullmatch(r"\s*([<>]=)\s*([0-9.]+)\s*", target)
    if match is None:
        raise ValueError(f"not a target: {target!r}")
    bound = float(match.group(2))
    met = value <= bound if match.group(1) == "<=" else value >= bound
    sign = "≤" if match.group(1) == "<=" else "≥"
    return f"{sign} {match.group(2)} — {'met' if met else 'missed'}"


def _row(cells: tuple[str, ...] | list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _load(results: dict[str, Any]) -> str:
    load = results["loadAverage"]
    return f"{load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end, {load['peak1min']:.1f} at most"


def _recovery_point(point: dict[str, Any], target: str) -> list[str]:
    warm_up = (
        f"; before it, {point['warmUpSamples']} up to {point['warmUpMaxSeconds']:.1f} s"
        if point["warmUpSamples"]
        else ""
    )
    if point["p99Seconds"] is None:
        label = f"Recovery point under that load: no sample once the archive held a commit of the load{warm_up}"
        return [label, "—", "—", "—", "—"]
    label = (
        f"Recovery point under that load: p50 {point['p50Seconds']:.1f} s, max {point['maxSeconds']:.1f} s "
        f"({point['samples']} samples every {point['everySeconds']:g} s once the archive held a commit of the "
        f"load{warm_up}), p99"
    )
    return [label, "—", f"{point['p99Seconds']:.1f} s", "—", verdict(point["p99Seconds"], target)]


def _captures(captures: dict[str, Any]) -> list[str]:
    lag = captures["lagSeconds"]
    label = (
        f"File documents captured after the commit that refers to them (capture timer `{captures['schedule']}`, "
        f"{captures['fileDocuments']:,} file documents over {captures['seconds'] / 60:.0f} minutes, "
        f"{captures['neverCaptured']} never captured): p50 {lag['p50']:.1f} s, max {lag['max']:.1f} s, p99"
    )
    target = f"<= {captures['target']['p99Seconds']:g}"
    return [label, "—", f"{lag['p99']:.1f} s", "—", verdict(lag["p99"], target)]


def table(results: dict[str, Any], captures: dict[str, Any] | None = None) -> str:
    restore, archiving, point = results["restore"], results["archiving"], results["recoveryPoint"]
    targets = results["target"]
    rows = [_row(HEADER), _row(["---"] * len(HEADER))]
    rows.append(
        _row(
            [
                f"Restore to a point in time: {results['rows']:,} rows, {results['files']:,} files "
                f"({results['filesBytes'] / 1e6:.0f} MB); baseline: barman-cloud by hand",
                f"{restore['byHandSeconds']:.2f} s",
                f"{restore['restoreToTimeSeconds']:.2f} s",
                f"{restore['ratio']:.2f}",
                verdict(restore["ratio"], targets["ratio"]),
            ]
        )
    )
    rows.append(
        _row(
            [
                f"pgbench at {archiving['rate']} tps ({archiving['clients']} clients, scale {archiving['scale']}): "
                "TPS without / with archiving",
                f"{archiving['tpsWithout']:.1f}",
                f"{archiving['tpsWith']:.1f}",
                f"{archiving['tpsRatio']:.3f}",
                verdict(archiving["tpsRatio"], targets["tpsRatio"]),
            ]
        )
    )
    rows.append(
        _row(
            [
                "pgbench's average latency without / with archiving",
                f"{archiving['latencyMsWithout']:.2f} ms",
                f"{archiving['latencyMsWith']:.2f} ms",
                f"{archiving['latencyMsWith'] / archiving['latencyMsWithout']:.2f}",
                "—",
            ]
        )
    )
    rows.append(_row(_recovery_point(point, targets["recoveryPointP99Seconds"])))
    if captures is not None:
        rows.append(_row(_captures(captures)))
    rows.append(
        _row(
            [
                "WAL archived per day of that load (extrapolated)",
                "—",
                f"{archiving['segmentsArchivedPerDay']:,} segments, "
                f"{archiving['bytesArchivedPerDay'] / 1e9:.2f} GB (gzip)",
                "—",
                "—",
            ]
        )
    )
    return "\n".join(rows)


def _duration(seconds: float) -> str:
    if seconds >= 1800:
        return "The issue's recovery-point target is over 30 minutes of load: this run held it that long. "
    return (
        f"The issue's recovery-point target is over 30 minutes of load; this run's is {seconds / 60:.0f} minutes "
        "(`--seconds 1800 --load-rounds 1` runs the 30). "
    )


def report(results: dict[str, Any], captures: dict[str, Any] | None = None) -> str:
    """The table (with bench.captures' row when there are its results), and under it how long the load ran,
    the rounds and the machine's load while they ran."""
    archiving, point = results["archiving"], results["recoveryPoint"]
    return (
        table(results, captures)
        + "\n\n"
        + f"Medians of {results['rounds']} restore rounds (each: by hand, then through the product). The load ran "
        + f"{point['loadedSeconds']:.0f} s with archiving and as long without, interleaved in "
        + f"{archiving['loadRounds']} pair{'s' if archiving['loadRounds'] != 1 else ''}, "
        + f"archive_timeout {results['archiveTimeoutSeconds']} s; "
        + f"WAL written with archiving: {archiving['walBytesPerMinute'] / 1e6:.1f} MB a minute. "
        + _duration(point["loadedSeconds"])
        + f"Load average (1 minute, {results['machine']['cpus']} cores) during the run: {_load(results)}."
    )


def load(directory: Path = RESULTS) -> dict[str, Any]:
    return json.loads((directory / "pitr.json").read_text())


def load_captures(directory: Path = RESULTS) -> dict[str, Any] | None:
    path = directory / "captures.json"
    return json.loads(path.read_text()) if path.exists() else None


if __name__ == "__main__":
    print(report(load(), load_captures()))
