"""The API fuzzed by schemathesis from its own OpenAPI description, through the development host:
no request may cause a 5xx, and every response must conform to the schema the description declares."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.appdata import create_scratch_app
from tests.support.polling import wait_for_status

pytestmark = pytest.mark.e2e

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


def finished_backup(api: str, environment_id: str) -> str:
    created = requests.post(f"{api}/environments/{environment_id}/backups", json={}, timeout=30).json()
    state = wait_for_status(f"{api}/environments/{environment_id}/backups/{created['id']}", "Processing", timeout=60)
    assert state["status"] == "Finished", state
    return state["id"]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    api, storage_services, database_factory, postgres_admin_dsn, tmp_path
):
    source = create_scratch_app(storage_services, database_factory(), postgres_admin_dsn, documents=1)
    target = create_scratch_app(
        storage_services, database_factory(), postgres_admin_dsn, namespace=source.namespace, state="Stopped"
    )
    backup_id = finished_backup(api, source.environment_id)

    # Real identifiers, mixed with generated ones, so that fuzzing reaches past the 404s.
    def known(values: list[str]) -> str:
        return "values = " + json.dumps(values)

    (tmp_path / "schemathesis.toml").write_text(
        "\n".join(
            [
                "[dictionaries.environments]", known([source.environment_id, target.environment_id]),
                "[dictionaries.backups]", known([backup_id]),
                "[dictionaries.namespaces]", known([source.namespace]),
                "[parameters]",
                '"path.env" = { dictionary = "environments", probability = 0.7 }',
                '"path.id" = { dictionary = "backups", probability = 0.7 }',
                '"path.ns" = { dictionary = "namespaces", probability = 0.7 }',
                '"body.targetEnvironment" = { dictionary = "environments", probability = 0.5 }',
            ]
        )
    )  # fmt: skip
    schemathesis = Path(sys.executable).with_name("schemathesis")
    # One worker: CPython 3.11's AST constructor keeps its recursion depth per interpreter, not per thread
    # (python/cpython#106905), and hypothesis parses lambdas' source while generating, so two worker threads
    # failed a CI run with "SystemError: AST constructor recursion depth mismatch".
    command = [
        str(schemathesis), "--config-file", str(tmp_path / "schemathesis.toml"), "run", f"{api}/openapi.json",
        "--checks", CHECKS,
        "--max-examples", "8",
        "--seed", "20261121",
        "--phases", "examples,coverage,fuzzing",
        "--workers", "1",
        "--request-timeout", "60",
        "--generation-database", "none",
        "--suppress-health-check", "all",
        "--exclude-path", "/api/health",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    report = result.stdout[-8000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
