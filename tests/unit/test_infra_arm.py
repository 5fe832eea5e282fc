"""tools/arm_check.py against the ARM models of the azure-mgmt-* packages (in .venv-infra, which make infra
installs): infra/ passes, and a copy with planted mistakes fails at the file and line of each. Also hadolint,
through tools/check_infra.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tools.check_infra import INFRA, INFRA_VENV, ROOT, hadolint

PYTHON = INFRA_VENV / "bin" / "python"


@pytest.fixture(scope="module", autouse=True)
def infra_venv() -> None:
    if not PYTHON.exists():
        pytest.fail(f"{PYTHON} is missing: run make infra (requirements-infra.txt)")


def arm_check(infra: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYTHON), "-m", "tools.arm_check", "--infra", str(infra)],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=120,
    )  # fmt: skip


def line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if text in line)


def plant(path: Path, old: str, new: str) -> None:
    content = path.read_text(encoding="utf-8")
    assert content.count(old) == 1, f"{old!r} is not once in {path.name}"
    path.write_text(content.replace(old, new), encoding="utf-8")


def test_infra_passes_and_every_resource_is_checked():
    result = arm_check(INFRA)
    assert result.returncode == 0, result.stderr
    summary = re.search(
        r"ARM models: (\d+) Microsoft\.\* resources, (\d+) properties checked, 0 problems", result.stdout
    )
    assert summary, result.stdout
    declared = sum(
        len(re.findall(r"^resource \w+ 'Microsoft\.", path.read_text(encoding="utf-8"), re.M))
        for path in INFRA.rglob("*.bicep")
    )
    assert int(summary[1]) == declared
    assert int(summary[2]) > 250
    # The one resource checked against a neighbouring version says so, with why.
    assert "scheduledQueryRules@2022-06-15: no azure-mgmt-monitor release ships 2022-06-15" in result.stdout


def test_planted_mistakes_fail_with_the_file_and_line(tmp_path):
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy)
    storage, site, monitoring = (
        copy / "modules/storage.bicep",
        copy / "modules/functionapp.bicep",
        copy / "modules/monitoring.bicep",
    )
    plant(storage, "    minimumTlsVersion: 'TLS1_2'", "    minimumTlsVersio: 'TLS1_2'")  # misspelt
    plant(storage, "    supportsHttpsTrafficOnly: true", "    supportsHttpsTrafficOnly: 'true'")  # wrong type
    plant(storage, "    accessTier: 'Hot'", "    accessTier: 'Warm'")  # not a value of the enum
    plant(site, "      ftpsState: 'Disabled'", "      ftpsState: 'Disabled'\n      httpsOnly: true")  # misplaced
    plant(
        site, "    clientAffinityEnabled: false", "    clientAffinityEnabled: false\n    defaultHostName: 'x'"
    )  # read-only
    plant(
        site, "      minimumElasticInstanceCount: minimumInstances", "      minimumElasticInstanceCount: planSku"
    )  # a string param
    plant(
        monitoring, "'Microsoft.Insights/components@2020-02-02' = {", "'Microsoft.Insights/components@2099-01-01' = {"
    )

    result = arm_check(copy)
    assert result.returncode == 1
    problems = result.stderr.splitlines()
    expected = [
        (storage, "minimumTlsVersio:", "has no property properties.minimumTlsVersio"),
        (
            storage,
            "supportsHttpsTrafficOnly: 'true'",
            "properties.supportsHttpsTrafficOnly takes a boolean, not a string",
        ),
        (storage, "accessTier: 'Warm'", "'Warm' is not one of cold, cool, hot, premium"),
        (site, "      httpsOnly: true", "SiteConfig has no property properties.siteConfig.httpsOnly"),
        (site, "defaultHostName: 'x'", "properties.defaultHostName is read-only in Site"),
        (site, "minimumElasticInstanceCount: planSku", "minimumElasticInstanceCount takes a number, not a string"),
        (
            monitoring,
            "components@2099-01-01",
            "Microsoft.Insights/components@2099-01-01: no installed azure-mgmt-* package",
        ),
    ]
    for path, where, message in expected:
        prefix = f"{path}:{line_of(path, where)}: "
        assert any(problem.startswith(prefix) and message in problem for problem in problems), (
            prefix,
            message,
            problems,
        )
    assert len(problems) == len(expected), problems


def test_role_ids_are_named_beside_them_and_held_against_the_table(tmp_path):
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy)
    roles = copy / "modules/roles.bicep"
    plant(roles, "// Monitoring Metrics Publisher", "// Monitoring Reader")
    plant(
        roles, "'7f951dda-4ed3-4680-a7ca-43fe172d538d' // AcrPull", "'7f951dda-4ed3-4680-a7ca-43fe172d5380' // AcrPull"
    )
    result = arm_check(copy)
    assert result.returncode == 1
    problems = result.stderr.splitlines()
    named = f"{roles}:{line_of(roles, 'Monitoring Reader')}: 3913510d-42f4-4e42-8a64-420c390055eb is Monitoring"
    assert any(problem.startswith(named) for problem in problems), problems
    assert any("7f951dda-4ed3-4680-a7ca-43fe172d5380 is not a built-in role" in problem for problem in problems)
    assert len(problems) == 2, problems


def test_hadolint_reports_a_planted_finding(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:13\nRUN apt-get update && apt-get install -y curl\n", encoding="utf-8")
    findings = hadolint(dockerfile, INFRA_VENV / "bin" / "hadolint")
    assert any("DL3008" in finding for finding in findings), findings  # unpinned apt packages
    assert hadolint(ROOT / "Dockerfile", INFRA_VENV / "bin" / "hadolint") == []


def test_the_workbook_and_the_alert_queries_the_templates_load_are_checked(tmp_path):
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy)
    monitoring = copy / "modules/monitoring.bicep"
    workbook = copy / "workbooks/appbackups.workbook.json"
    plant(workbook, '"visualization": "barchart"', '"visualization": "barchart3d"')
    plant(workbook, '| where name == \\"appbackups.operations.stalled\\"', "| where timestamp {Since}")
    (copy / "alerts/drill-failed.kql").unlink()

    result = arm_check(copy)
    assert result.returncode == 1
    problems = result.stderr.splitlines()
    workbook_line = line_of(monitoring, "loadTextContent('../workbooks/")
    drills_line = line_of(monitoring, "loadTextContent('../alerts/drill-failed.kql')")
    loads_workbook, loads_drills = f"{monitoring}:{workbook_line}: ", f"{monitoring}:{drills_line}: "
    expected = [
        (loads_workbook, "failures: unknown visualization 'barchart3d'"),
        (loads_workbook, "stalled: the query names parameters the workbook lacks: ['Since']"),
        (loads_drills, "loadTextContent: ../alerts/drill-failed.kql does not exist"),
    ]
    for prefix, message in expected:
        assert any(problem.startswith(prefix) and message in problem for problem in problems), (prefix, problems)
    assert len(problems) == len(expected), problems

    workbook.write_text('{"version": "Notebook/1.0", "items": [', encoding="utf-8")
    problems = arm_check(copy).stderr.splitlines()
    assert any(problem.startswith(loads_workbook) and "is not JSON" in problem for problem in problems), problems
