"""The alert queries in infra/alerts/ against the log lines the code writes: an alert that matches no
line the app ever logs never fires. The KQL regular expressions used here are plain enough to mean
the same in RE2 (Kusto) and in Python."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.check_infra import BicepFile, array_items, object_entries, path_value

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "infra" / "alerts"
RUNTIME_CODE = [ROOT / "function_app.py", *(ROOT / "functions").rglob("*.py"), *(ROOT / "shared").rglob("*.py")]

FAILED_LINE = "backup %s of %s failed: %s"
FAILED_DRILL_LINE = "backup %s of %s failed verification: %s"
STALE_LINE = "environment %s has no successful backup since %s"


def _query(name: str) -> str:
    return (ALERTS / name).read_text(encoding="utf-8")


def _filter(query: str) -> re.Pattern[str]:
    [pattern] = re.findall(r'matches regex @"([^"]+)"', query)
    return re.compile(pattern)


def _environment(query: str, line: str) -> str | None:
    [pattern] = re.findall(r'extract\(@"([^"]+)", 1, message\)', query)
    match = re.search(pattern, line)
    return match[1] if match else None


def _format_strings() -> set[str]:
    """Every string literal passed first to a logger call in the runtime code."""
    found: set[str] = set()
    for path in RUNTIME_CODE:
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'logger\.(?:debug|info|warning|error|exception|critical)\(\s*"([^"]+)"', text))
    return found


@pytest.fixture(scope="module")
def formats() -> set[str]:
    found = _format_strings()
    assert len(found) > 10, "the scan for log format strings found almost nothing"
    return found


def test_the_failed_backup_query_matches_the_failure_line_the_app_writes(formats: set[str]) -> None:
    assert FAILED_LINE in formats, "no code writes the line the failed-backups alert looks for"
    query = _query("failed-backups.kql")
    line = FAILED_LINE % ("0193a4b2-snapshot", "acme-production", "the database refused the login")
    assert _filter(query).search(line)
    assert _environment(query, line) == "acme-production"


def test_a_failed_restore_drill_raises_the_same_alert_as_a_failed_backup(formats: set[str]) -> None:
    assert FAILED_DRILL_LINE in formats, "no code writes the line of a failed drill"
    query = _query("failed-backups.kql")
    line = FAILED_DRILL_LINE % ("0193a4b2-snapshot", "acme-production", "row_counts: 9 rows loaded, 10 recorded")
    assert _filter(query).search(line)
    assert _environment(query, line) == "acme-production"
    passed = next(line for line in formats if line.startswith("backup ") and " verified " in line)
    assert not _filter(query).search(passed.replace("%s", "x"))


def test_the_failed_backup_query_ignores_retries_and_successes(formats: set[str]) -> None:
    query = _query("failed-backups.kql")
    ignored = [
        line
        for line in formats
        if line.startswith("backup ") and line != FAILED_LINE and ("attempt" in line or "finished" in line)
    ]
    assert ignored, "expected the retry and finished lines of the backup runner"
    for line in ignored:
        sample = line.replace("%d", "1").replace("%s", "x")
        assert not _filter(query).search(sample), f"the alert would fire on {line!r}"


def test_the_stale_backup_query_matches_the_freshness_check(formats: set[str]) -> None:
    assert STALE_LINE in formats, "no code writes the line the no-backup-in-26-hours alert looks for"
    query = _query("stale-backups.kql")
    for since in ("2026-11-20T02:04:11+00:00", "it was registered"):
        line = STALE_LINE % ("acme-acceptance", since)
        assert _filter(query).search(line)
        assert _environment(query, line) == "acme-acceptance"


@pytest.mark.parametrize("query_file", ["failed-backups.kql", "stale-backups.kql"])
def test_each_query_is_an_alert_split_by_environment(query_file: str) -> None:
    monitoring = BicepFile(ROOT / "infra" / "modules" / "monitoring.bicep")
    rules = [
        resource.body
        for resource in monitoring.resources_of_type("Microsoft.Insights/scheduledQueryRules")
        if query_file in resource.body
    ]
    assert len(rules) == 1, f"{query_file} should be the query of exactly one alert rule"
    [criterion] = array_items(path_value(rules[0], "properties", "criteria", "allOf"))
    assert object_entries(criterion)["query"] == f"loadTextContent('../alerts/{query_file}')"
    [dimension] = array_items(object_entries(criterion)["dimensions"])
    assert object_entries(dimension)["name"] == "'environment'"
    assert re.search(r"\bby environment\b", _query(query_file)), "the query must return an environment column"
