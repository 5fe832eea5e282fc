"""The Benchmarks page's table of the histories' long run (docs/benchmarks/index.md), made from
bench/results/histories.json (tests/unit/test_bench_histories_report.py holds the page to it).

.venv/bin/python -m bench.histories_report
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS


def load(path: Path = RESULTS / "histories.json") -> dict[str, Any]:
    return json.loads(path.read_text())


def report(results: dict[str, Any]) -> str:
    steps = results["stepsByRule"]
    seconds = results.get("secondsByRule", {})
    failures = results["failures"]
    lines = [
        f"Run on {results['startedOn'][:16].replace('T', ' ')} UTC for {results['secondsRun'] / 60:.0f} minutes "
        f"(code at {results['code']['commit'][:7]}): {results['histories']} histories of up to "
        f"{results['settings']['steps']} steps, {sum(steps.values())} steps in all, "
        f"{results.get('backupsChecked', 0)} backups restored into a scratch environment and compared with the "
        f"model, {len(failures)} failure{'s' if len(failures) != 1 else ''}.",
        "",
        "| rule | steps | seconds per step |",
        "| --- | --- | --- |",
    ]
    for rule, count in sorted(steps.items(), key=lambda item: -item[1]):
        per_step = seconds.get(rule, 0) / count if count else 0
        lines.append(f"| {rule.replace('_', ' ')} | {count} | {per_step:.1f} |")
    for failure in failures:
        lines.append("")
        lines.append(f"Failure (seed {failure.get('seed')}): {failure.get('error', '')}".rstrip())
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(load()))
