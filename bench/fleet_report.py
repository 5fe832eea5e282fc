"""The Benchmarks page's table of the fleet benchmark (docs/benchmarks/index.md), made from bench/results/fleet.json
and written between the page's fleet markers (never typed by hand: tests/unit/test_bench_reports.py holds the page
to the results).

    .venv/bin/python -m bench.fleet_report           # prints what the page's "A night of a fleet" section shows
    .venv/bin/python -m bench.fleet_report --write   # writes it into the page, between its markers
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS, between_markers, write_between_markers

PAGE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "index.md"
BEGIN, END = "<!-- fleet:begin (bench/fleet_report.py) -->", "<!-- fleet:end -->"
TARGET = 1.2


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def verdict(ratio: float) -> str:
    return f"{ratio:.2f} — {'met' if ratio <= TARGET else 'missed'}"


def _servers(setup: dict[str, Any]) -> str:
    shared = sum(1 for server in setup["servers"] if server["kind"] == "shared")
    private = len(setup["servers"]) - shared
    parts = ["the machine's shared PostgreSQL"] if shared else []
    if private:
        parts.append(f"{private} private cluster{'s' if private > 1 else ''} (own postmaster, own port)")
    return " and ".join(parts)


def setup_line(results: dict[str, Any]) -> str:
    setup = results["setup"]
    queues = setup["hostQueues"]
    low, high = setup["filesPerEnvironment"]
    return (
        f"{setup['environments']} environments in {setup['namespaces']} namespaces: a database of "
        f"{setup['rowsPerDatabase']} rows each, {len(setup['servers'])} database servers ({_servers(setup)}), "
        f"{setup['files']:,} file documents of {setup['fileSizes']} ({low} to {high} each). At most "
        f"{setup['backupsPerDatabaseServer']} backups per server; a host works on {queues['concurrency']} queue "
        f"messages at once (host.json: batchSize {queues['batchSize']} + newBatchThreshold "
        f"{queues['newBatchThreshold']}). The nightly timer run by hand (so no spread); "
        f"{setup['storage']}."
    )


def single_line(single: dict[str, Any], environments: int) -> str:
    counts = [run["files"] for run in single["runs"]]
    fit = single["fit"]
    return (
        f"Single backups, one at a time through the API: {single['sample']} environments of {min(counts)} to "
        f"{max(counts)} files, {single['meanSeconds']:.2f} s on average; along the line through them "
        f"({fit['intercept']:.2f} s + {fit['perFile'] * 1000:.2f} ms per file) the {environments} add up to "
        f"{single['estimatedSumSeconds']:,.0f} s."
    )


def night_table(results: dict[str, Any]) -> str:
    environments = results["setup"]["environments"]
    per_server = results["setup"]["backupsPerDatabaseServer"]
    header = [
        "Night",
        "Parallelism",
        "Sum of singles / parallelism",
        "Wall time",
        f"Ratio (≤ {TARGET})",
        "Finished exactly once",
        f"Most at once per server, seen / slots (≤ {per_server})",
        "Operation wakes per backup",
        "Worker RSS: before / peak / resting",
        "Azurite busy",
        "Load (1 min): start / peak",
    ]
    lines = [_row(header), "|" + "---|" * len(header)]
    for night in results["nights"]:
        servers = night["perServer"].values()
        most = ", ".join(f"{s['mostBackupsSeenAtOnce']} / {s['mostSlotsHeldAtOnce']}" for s in servers)
        workers = "; ".join(
            f"{w['rssBeforeMiB']:.0f} / {w['peakRssMiB']:.0f} / {w['restingRssMiB']:.0f} MiB" for w in night["workers"]
        )
        storage = "-" if night["storageCores"] is None else f"{night['storageCores']:.2f} cores"
        load = night["loadAverage"]
        lines.append(
            _row(
                [
                    f"{night['hosts']} host{'s' if night['hosts'] > 1 else ''}",
                    str(night["parallelism"]),
                    f"{night['idealSeconds']:,.1f} s",
                    f"{night['wallSeconds']:,.1f} s",
                    verdict(night["ratio"]),
                    f"{night['finishedExactlyOnce']} of {environments}",
                    most,
                    f"{night['operationWakes'] / environments:.1f}",
                    workers,
                    storage,
                    f"{load['start'][0]:.1f} / {load['peak1min']:.1f}",
                ]
            )
        )
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    environments = results["setup"]["environments"]
    parts = [setup_line(results), single_line(results["single"], environments), night_table(results)]
    return "\n\n".join(parts) + "\n"


def load(path: Path = RESULTS / "fleet.json") -> dict[str, Any]:
    return json.loads(path.read_text())


def write(results: dict[str, Any], page: Path = PAGE) -> None:
    """Replace what the page holds between its fleet markers with the report."""
    write_between_markers(page, BEGIN, END, report(results))


def on_page(page: Path = PAGE) -> str:
    """What the page holds between its fleet markers."""
    return between_markers(page, BEGIN, END)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write the table into the page between its markers")
    if parser.parse_args().write:
        write(load())
    else:
        print(report(load()), end="")
