"""The nights view end to end, through the development host: the nightly timer fired through the host's admin
API, GET /api/schedules/nights/{night} showing each environment's scheduled backup move from waiting (for a
slot on its database server, one slot here) through running to done with its backup, and `appbackups nights
DATE` printing the same."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from shared.contracts.environments import EnvironmentBody
from shared.domain.access import SYSTEM
from tests.e2e.test_cli import appbackups
from tests.support.appdata import create_scratch_app
from tests.support.apphost import start_app_host

pytestmark = pytest.mark.e2e


def test_a_fired_night_moves_from_waiting_to_done_with_its_backups_and_the_cli_prints_it(
    private_stack, database_factory, postgres_admin_dsn, tmp_path: Path
) -> None:
    services, connection_string, _ = private_stack
    first = create_scratch_app(services, database_factory(), postgres_admin_dsn, documents=2)
    second = create_scratch_app(services, database_factory(), postgres_admin_dsn, namespace=first.namespace)
    broken = services.environment_catalog.get(first.environment_id)
    body = EnvironmentBody.model_validate(
        {
            "namespace": first.namespace,
            "appName": "scratch",
            "displayName": "Never created",
            "state": "CreationFailed",
            "database": {"host": "127.0.0.1", "database": broken.database.database, "user": "postgres"},
            "files": {"container": first.container.container_name, "prefix": "docs/"},
            "modelVersion": "1.0.0",
        }
    )
    services.environments.put(f"{first.environment_id}-x", body.to_registration(), SYSTEM)
    ids = [first.environment_id, second.environment_id]

    host = start_app_host(
        connection_string, tmp_path / "devhost.log", extra_settings={"APPBACKUPS_BACKUPS_PER_DATABASE_SERVER": "1"}
    )
    try:
        night = datetime.now(UTC).date().isoformat()
        url = f"{host.api}/schedules/nights/{night}"
        before = requests.get(url, timeout=30).json()
        assert {entry["state"] for entry in before["environments"]} == {"notDue"}
        assert before["counts"]["notDue"] == before["counts"]["total"] == 3

        fired = requests.post(
            f"{host.api.removesuffix('/api')}/admin/functions/nightly_backups", json={"input": ""}, timeout=30
        )
        assert fired.ok, fired.text

        seen: dict[str, list[str]] = {environment_id: [] for environment_id in ids}
        details: set[str] = set()
        deadline = time.monotonic() + 60
        while True:
            view = requests.get(url, timeout=30).json()
            entries = {entry["environmentId"]: entry for entry in view["environments"]}
            for environment_id in ids:
                state = entries[environment_id]["state"]
                if not seen[environment_id] or seen[environment_id][-1] != state:
                    seen[environment_id].append(state)
                details.add(entries[environment_id]["detail"])
            if all(entries[environment_id]["state"] in ("done", "failed") for environment_id in ids):
                break
            assert time.monotonic() < deadline, f"the night did not settle: {view}"
            time.sleep(0.1)
        printed = appbackups(host.api, "nights", night)
        listed = appbackups(host.api, "--json", "nights", night)
    finally:
        host.stop()

    for environment_id in ids:
        states = seen[environment_id]
        assert states[-1] == "done", (environment_id, states, view)
        # Never back to not due, and done once, last. (A backup that looks for a slot shows running while it
        # looks, then waiting again when none is free.)
        assert "notDue" not in states[1:], states
        assert states.count("done") == 1, states
    # One slot on the shared server: one of the two waited for it while the other ran, and the view said so.
    assert any("waiting" in states for states in seen.values()), seen
    assert "waiting for a slot on 127.0.0.1:5432" in details, details
    assert view["counts"] == {"notDue": 1, "waiting": 0, "running": 0, "done": 2, "failed": 0, "total": 3}
    never = entries[f"{first.environment_id}-x"]
    assert (never["state"], never["detail"]) == ("notDue", "the environment is CreationFailed")
    backups = {environment_id: entries[environment_id]["snapshotId"] for environment_id in ids}
    for environment_id, backup_id in backups.items():
        [made] = services.backup_catalog.of_environment(environment_id)
        assert (made.id, made.status.value, made.tier.value) == (backup_id, "Finished", "nightly")

    # The CLI: the night's counts, and each environment with its backup.
    assert printed.returncode == 0, printed.stderr
    assert f"night of {night}: 2 done, 0 failed, 0 running, 0 waiting, 1 not due (3 environments)" in printed.stdout
    lines = printed.stdout.splitlines()
    for environment_id, backup_id in backups.items():
        [line] = [line for line in lines if line.startswith(environment_id + " ")]
        assert line.split()[2:4] == ["done", backup_id], line
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert {entry["environmentId"]: entry.get("snapshotId") for entry in document["environments"]} == {
        **backups,
        f"{first.environment_id}-x": None,
    }
