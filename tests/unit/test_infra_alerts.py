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


# -- the alerts and the workbook on the app's OpenTelemetry metrics (shared/telemetry) ------------------------------

TELEMETRY_ALERTS = {  # query -> its alert's dimension
    "recovery-point-age.kql": "environment",
    "drill-failed.kql": "environment",
    "poison-queue.kql": "queue",
    "stalled-operations.kql": "environment",
}
WORKBOOK = ROOT / "infra" / "workbooks" / "appbackups.workbook.json"
POISON_LINE = "poison message %s on %s: operation %s is abandoned"


def _instruments_and_attributes(kql: str) -> tuple[set[str], set[str]]:
    instruments = set(re.findall(r'name (?:==|endswith) "(appbackups\.[\w.]+)"', kql))
    instruments |= {
        name for group in re.findall(r"name in \(([^)]*)\)", kql) for name in re.findall(r'"([^"]+)"', group)
    }
    return instruments, set(re.findall(r'customDimensions\["([^"]+)"\]', kql))


def _telemetry_names() -> tuple[set[str], set[str]]:
    from shared.telemetry import names

    values = {value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)}
    return set(names.INSTRUMENTS), values - set(names.INSTRUMENTS)


@pytest.mark.parametrize(("query_file", "dimension"), TELEMETRY_ALERTS.items())
def test_each_telemetry_alert_is_one_rule_split_by_its_dimension(query_file: str, dimension: str) -> None:
    monitoring = BicepFile(ROOT / "infra" / "modules" / "monitoring.bicep")
    rules = [
        resource.body
        for resource in monitoring.resources_of_type("Microsoft.Insights/scheduledQueryRules")
        if query_file in resource.body
    ]
    assert len(rules) == 1, f"{query_file} should be the query of exactly one alert rule"
    [criterion] = array_items(path_value(rules[0], "properties", "criteria", "allOf"))
    assert object_entries(criterion)["query"] == f"loadTextContent('../alerts/{query_file}')"
    [split] = array_items(object_entries(criterion)["dimensions"])
    assert object_entries(split)["name"] == f"'{dimension}'"
    assert re.search(rf"\bby {dimension}\b", _query(query_file)), f"the query must return a {dimension} column"


@pytest.mark.parametrize("query_file", [*TELEMETRY_ALERTS, "workbook"])
def test_the_telemetry_queries_name_only_instruments_and_attributes_the_app_reports(query_file: str) -> None:
    if query_file == "workbook":
        import json

        document = json.loads(WORKBOOK.read_text(encoding="utf-8"))
        kql = "\n".join(
            query["query"]
            for item in document["items"]
            for query in ([item["content"]] if item["type"] == 3 else item["content"].get("parameters", []))
            if "query" in query
        )
    else:
        kql = _query(query_file)
    instruments, attributes = _instruments_and_attributes(kql)
    known_instruments, known = _telemetry_names()
    assert instruments, f"{query_file} reads no instrument"
    assert instruments <= known_instruments, f"{query_file} reads instruments the app does not report"
    assert attributes <= known, f"{query_file} reads attributes the app does not set: {attributes - known}"


def test_the_workbook_reads_every_instrument_the_issue_asks_for() -> None:
    from shared.telemetry import names

    instruments, _ = _instruments_and_attributes(WORKBOOK.read_text(encoding="utf-8").replace('\\"', '"'))
    assert {
        names.RECOVERY_POINT_AGE,
        names.BACKUP_DURATION,
        names.BACKUP_SIZE,
        names.OPERATIONS_FAILED,
        names.RESTORE_DURATION,
        names.STORAGE_USED,
    } <= instruments


def test_the_recovery_point_alert_fires_past_26_hours_the_freshness_default() -> None:
    from shared.config import Settings

    [threshold] = re.findall(r"\| where value > (\d+)", _query("recovery-point-age.kql"))
    assert int(threshold) == 26 * 3600
    assert Settings.model_fields["freshness_hours"].default == 26


def test_the_drill_alert_reads_the_kind_drills_run_as() -> None:
    from shared.drills.steps import KIND
    from shared.telemetry import names

    assert names.DRILL == KIND
    assert f'== "{KIND}"' in _query("drill-failed.kql")


def test_the_poison_queue_alert_matches_the_line_the_poison_trigger_writes(formats: set[str]) -> None:
    from shared.config import Queues

    assert POISON_LINE in formats, "no code writes the line the poison-queue alert looks for"
    query = _query("poison-queue.kql")
    line = POISON_LINE % ("7d3c", Queues.poison(Queues.OPERATIONS), "0193a4b2-operation")
    assert _filter(query).search(line)
    [pattern] = re.findall(r'extract\(@"([^"]+)", 1, message\)', query)
    match = re.search(pattern, line)
    assert match
    assert match[1] == "operation-work-poison"
    assert 'endswith "-poison"' in query
    assert Queues.poison("x").endswith("-poison")
