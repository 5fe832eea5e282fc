"""The Benchmarks page's tables of the scale benchmark (docs/benchmarks/index.md), made from bench/results/scale.json
(never typed by hand: tests/unit/test_bench_reports.py holds the page to them).

    .venv/bin/python -m bench.scale_report     # prints the tables the page's "Scale" section shows
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS

ROWS = (
    ("copyBaseline", "Copy baseline: list + 32 server-side copies in flight"),
    ("dumpBaseline", "`pg_dump -Fc` into a blob"),
    ("restoreBaseline", "`pg_restore` while the files are copied (the restore baseline)"),
    ("archiveBaseline", "`tar czf` of the same data on local disk (the archive baseline)"),
    ("full", "Full backup"),
    ("second", "Second backup, after 1 % new files"),
    ("restore", "Restore into another (empty) environment"),
    ("prune", "Delete one backup, then prune the namespace"),
    ("archive", "Download archive build (Full Snapshot, `files_and_database`)"),
)
KINDS = ("list", "copy", "write", "read", "properties", "delete", "table")
RATIOS = (
    ("full_over_copyBaseline", "full backup / copy baseline", "≤ 1.0"),
    ("second_over_dumpBaseline", "second backup / `pg_dump` alone", "≤ 1.15"),
    ("restore_over_copyBaseline", "restore / copy baseline", "≤ 1.0"),
    ("restore_over_restoreBaseline", "restore / restore baseline", "≤ 1.15 (on the 2.2 GB set)"),
    ("archive_over_archiveBaseline", "archive build / `tar czf`", "none; reported"),
)
PER_10K = ("copyBaseline", "full", "second", "restore", "archive")
GROWTH = ("full", "second", "restore", "prune", "archive")
# The sample Hot-tier prices of Microsoft's "Estimate the cost of using Azure Blob Storage" (per 10,000):
# write and list operations (Copy Blob bills as a write), and read and all other operations.
WRITE_PRICE, READ_PRICE = 0.055, 0.0044
ACCOUNT_REQUESTS_PER_SECOND = 20_000  # "Scalability and performance targets for standard storage accounts"
MILLION = 1_000_000
COSTED = ("full", "second", "restore", "archive")


def size_name(size: dict[str, Any]) -> str:
    kind = "small" if size["fileSizes"] == "1-4 KB" else "mixed-size"
    return f"{size['files']:,} {kind} files"


def _mib(value: float) -> str:
    return f"{value:,.0f} MiB"


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _head(header: list[str]) -> list[str]:
    return [_row(header), "|" + "---|" * len(header)]


def size_table(size: dict[str, Any]) -> str:
    rounds = size["repeat"]
    median = "Median" if rounds == 1 else f"Median ({rounds} rounds)"
    header = ["Operation", median, "Rounds", "s per 10k files", "Peak growth", "Azurite busy", "Process busy"]
    header += [kind.capitalize() for kind in KINDS]
    lines = _head(header)
    for name, title in ROWS:
        figures = size["operations"][name]
        per_10k = figures.get("secondsPer10kFiles")
        transactions = figures["transactions"]
        cells = [
            title,
            f"{figures['seconds']:.1f} s",
            ", ".join(f"{run:.1f}" for run in figures["runs"]),
            f"{per_10k:.1f} s" if per_10k is not None else "-",
            _mib(figures["peakGrowthMiB"]),
            _cores(figures.get("storageCores")),
            _cores(figures.get("processCores")),
            *(f"{transactions[kind]:,}" for kind in KINDS),
        ]
        lines.append(_row(cells))
    return "\n".join(lines)


def ratio_table(sizes: list[dict[str, Any]]) -> str:
    header = ["Ratio (same run)", *(size_name(size) for size in sizes), "Target"]
    lines = _head(header)
    for key, title, target in RATIOS:
        lines.append(_row([title, *(f"{size['ratios'][key]:.2f}" for size in sizes), target]))
    return "\n".join(lines)


def growth_table(sizes: list[dict[str, Any]]) -> str:
    """Seconds per 10k files and memory, size by size: what should stay flat as the files grow."""
    header = ["Per size", *(size_name(size) for size in sizes)]
    lines = _head(header)
    for name in PER_10K:
        title = dict(ROWS)[name]
        cells = [f"{size['operations'][name]['secondsPer10kFiles']:.1f} s" for size in sizes]
        lines.append(_row([f"{title}: s per 10k files", *cells]))
    for name in GROWTH:
        title = dict(ROWS)[name]
        cells = [_mib(size["operations"][name]["peakGrowthMiB"]) for size in sizes]
        lines.append(_row([f"{title}: peak memory growth", *cells]))
    return "\n".join(lines)


def cost_table(sizes: list[dict[str, Any]]) -> str:
    """Each operation's blob transactions carried to a million files along the line through the two
    small-file sizes measured: what grows with the files grows, what does not (the dump's chunks, the
    same database at every size) stays."""
    small = sorted((size for size in sizes if size["fileSizes"] == "1-4 KB"), key=lambda size: size["files"])
    low, high = small[0], small[-1]

    def at_a_million(name: str, kind: str) -> int:
        low_count = low["operations"][name]["transactions"][kind]
        high_count = high["operations"][name]["transactions"][kind]
        slope = (high_count - low_count) / (high["files"] - low["files"])
        return max(round(high_count + slope * (MILLION - high["files"])), 0)

    header = ["At 1,000,000 files", "List", "Copy", "Write", "Read", "Properties", "Blob transactions", "Cost"]
    header.append("Seconds of the account's 20,000 requests/s")
    lines = _head(header)
    for name in COSTED:
        counts = {kind: at_a_million(name, kind) for kind in ("list", "copy", "write", "read", "properties")}
        total = sum(counts.values())
        dollars = (counts["list"] + counts["copy"] + counts["write"]) * WRITE_PRICE / 10_000
        dollars += (counts["read"] + counts["properties"]) * READ_PRICE / 10_000
        cells = [dict(ROWS)[name], *(f"{count:,}" for count in counts.values())]
        cells += [f"{total:,}", f"${dollars:,.2f}", f"{total / ACCOUNT_REQUESTS_PER_SECOND:,.0f} s"]
        lines.append(_row(cells))
    intro = f"Carried along the line through the {low['files']:,}- and {high['files']:,}-file counts:"
    return intro + "\n\n" + "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    sizes = results["sizes"]
    parts = []
    for size in sizes:
        parts.append(f"**{size_name(size)}**\n\n{size_table(size)}")
    parts.append(ratio_table(sizes))
    parts.append(growth_table(sizes))
    parts.append(cost_table(sizes))
    return "\n\n".join(parts) + "\n"


def load(path: Path = RESULTS / "scale.json") -> dict[str, Any]:
    return json.loads(path.read_text())


if __name__ == "__main__":
    print(report(load()), end="")
