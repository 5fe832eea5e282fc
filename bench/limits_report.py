"""The Benchmarks page's tables of the physical limits (docs/benchmarks/index.md), made from bench/results/limits.json
and written between the page's limits markers (never typed by hand: tests/unit/test_bench_reports.py holds the page
to them).

    .venv/bin/python -m bench.limits_report           # prints the tables
    .venv/bin/python -m bench.limits_report --write   # writes them into the page, between its markers
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS, between_markers, write_between_markers

PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "index.md"
BEGIN, END = "<!-- limits:begin (bench/limits_report.py) -->", "<!-- limits:end -->"
LIMITS = (
    ("pgDumpToDevNull", "`pg_dump -Fc` of the database into /dev/null"),
    ("pgDumpToBlob", "`pg_dump -Fc` streamed into a blob"),
    ("copySmallBlobs", "Server-side copy of small (1-4 KB) blobs, 16 at a time"),
    ("copyLargeBlob", "Server-side copy of one large blob (by reference in Azurite)"),
    ("upload", "Upload of one large blob"),
    ("download", "Download of one large blob"),
)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _rate(name: str, figures: dict[str, Any]) -> str:
    if name.startswith("pgDump"):
        return f"{figures['databaseMBps']:,.1f} MB/s of database, {figures['dumpMBps']:,.1f} MB/s of dump"
    if name == "copySmallBlobs":
        return f"{figures['blobsPerSecond']:,.0f} blobs/s, {figures['MBps']:,.2f} MB/s"
    return f"{figures['MBps']:,.1f} MB/s"


def _what(name: str, results: dict[str, Any]) -> str:
    if name.startswith("pgDump"):
        database, dump = results["databaseBytes"] / 1e6, results["dumpBytes"] / 1e6
        return f"{results['rows']:,} rows: {database:,.0f} MB, dump {dump:,.0f} MB"
    if name == "copySmallBlobs":
        return f"{results['smallBlobs']:,} blobs, {results['smallBlobsBytes'] / 1e6:,.1f} MB"
    return f"{results['largeBlobBytes'] / 1e6:,.0f} MB"


def limits_table(results: dict[str, Any]) -> str:
    lines = [_row(["Limit", "Of", "Median seconds", "Rate"]), _row(["---", "---", "---:", "---"])]
    for name, label in LIMITS:
        figures = results["limits"][name]
        lines.append(_row([label, _what(name, results), f"{figures['seconds']:,.2f}", _rate(name, figures)]))
    return "\n".join(lines)


def fractions_table(results: dict[str, Any]) -> str:
    labels = dict(LIMITS)
    lines = [
        _row(["Operation (results)", "Measure", "Reached", "Limit", "Fraction of the limit"]),
        _row(["---", "---", "---:", "---", "---:"]),
    ]
    for entry in results["fractions"]:
        lines.append(
            _row(
                [
                    f"{entry['operation']} ({entry['source']})",
                    entry["measure"],
                    f"{entry['reached']:,.1f}",
                    f"{labels[entry['limit']]}: {entry['limitValue']:,}",
                    f"{entry['fraction']:.2f}",
                ]
            )
        )
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    load = results["loadAverage"]
    return (
        limits_table(results)
        + "\n\n"
        + fractions_table(results)
        + "\n\n"
        + f"Medians of {results['repeat']} rounds, on Azurite (a local emulator) and the local PostgreSQL; "
        + f"load average (1 minute, {results['machine']['cpus']} cores) during the run: {load['start'][0]:.1f} at "
        + f"the start, {load['end'][0]:.1f} at the end, {load['peak1min']:.1f} at most. The operations' figures "
        + "come from their own runs, at other times and loads: a fraction says how close an operation came, "
        + "not an exact share. Azurite copies a blob within its account by reference (the copy shares the "
        + "source's stored blocks): a copy takes as long whatever the blob's size, so a file copy's limit is the "
        + "small-blob copy rate, in copies a second.\n"
    )


def write(results: dict[str, Any], page: Path = PAGE) -> None:
    """Replace what the page holds between its limits markers with the report."""
    write_between_markers(page, BEGIN, END, report(results))


def on_page(page: Path = PAGE) -> str:
    """What the page holds between its limits markers."""
    return between_markers(page, BEGIN, END)


def load(directory: Path = RESULTS) -> dict[str, Any]:
    return json.loads((directory / "limits.json").read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write the tables into the page between its markers")
    if parser.parse_args().write:
        write(load())
    else:
        print(report(load()), end="")
