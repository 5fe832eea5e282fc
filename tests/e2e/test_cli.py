"""The installed `appbackups` command against the development host: the whole life of a backup, and
the exit codes a script relies on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.appdata import create_scratch_app, table_contents

pytestmark = pytest.mark.e2e

COMMAND = Path(sys.executable).with_name("appbackups")
CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / f"appbackups-cli-test-{os.getpid()}"


@pytest.fixture(scope="module", autouse=True)
def upload_journals():
    yield
    shutil.rmtree(CACHE, ignore_errors=True)


@pytest.fixture
def apps(storage_services, database_factory, postgres_admin_dsn):
    source = create_scratch_app(storage_services, database_factory(), postgres_admin_dsn, documents=3)
    target = create_scratch_app(
        storage_services, database_factory(), postgres_admin_dsn, namespace=source.namespace, state="Running"
    )
    return source, target


def appbackups(api: str, *arguments: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("APPBACKUPS_")}
    environment["APPBACKUPS_CONFIG"] = os.devnull
    environment["COLUMNS"] = "200"  # rich wraps tables at 80 columns when not on a terminal
    environment["XDG_CACHE_HOME"] = str(CACHE)  # upload journals
    environment.update(env or {})
    return subprocess.run(
        [str(COMMAND), "--url", api, *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=environment,
        check=False,
    )


def as_json(api: str, *arguments: str, cwd: Path | None = None):
    result = appbackups(api, "--json", *arguments, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_backup_from_creation_to_restore_download_upload_and_deletion(api, apps, tmp_path):
    source, target = apps

    listed = as_json(api, "envs", "list")
    assert {source.environment_id, target.environment_id} <= {item["id"] for item in listed}
    assert as_json(api, "envs", "show", source.environment_id)["state"] == "Running"
    human = appbackups(api, "envs", "show", source.environment_id)
    assert human.returncode == 0
    assert source.environment_id in human.stdout

    backup = as_json(api, "backups", "create", source.environment_id, "--comment", "from the CLI", "--wait")
    assert (backup["status"], backup["comment"], backup["fileCount"]) == ("Finished", "from the CLI", 3)
    reference = f"{source.environment_id}/{backup['id']}"
    assert as_json(api, "backups", "show", f"{source.environment_id}/latest")["id"] == backup["id"]
    assert as_json(api, "backups", "list", source.environment_id)[0]["id"] == backup["id"]
    table = appbackups(api, "backups", "list", source.environment_id)
    assert table.returncode == 0
    assert "from the CLI" in table.stdout
    short = table.stdout.splitlines()[1].split()[0]  # the list shows the end of each id
    assert backup["id"].endswith(short)
    assert as_json(api, "backups", "show", f"{source.environment_id}/{short}")["id"] == backup["id"]
    shown = appbackups(api, "backups", "show", short, "--env", source.environment_id)
    assert shown.returncode == 0, shown.stderr
    assert backup["id"] in shown.stdout
    assert "documents" in shown.stdout

    pinned = as_json(api, "backups", "edit", backup["id"], "--env", source.environment_id, "--keep-until", "2099-01-01")
    assert pinned["keepUntil"].startswith("2099-01-01")
    assert as_json(api, "backups", "edit", reference, "--comment", "kept")["comment"] == "kept"

    running = appbackups(api, "restore", reference, "--to", target.environment_id, "--wait")
    assert running.returncode == 4, running.stderr
    assert "stop it first" in running.stderr
    assert as_json(api, "envs", "stop", target.environment_id)["state"] == "Stopped"
    restored = appbackups(api, "restore", reference, "--to", target.environment_id, "--wait")
    assert restored.returncode == 0, restored.stderr
    assert "FINISHED" in restored.stdout
    assert table_contents(target.dsn) == table_contents(source.dsn)
    restore_id = restored.stdout.split()[1].rstrip(":")
    steps = as_json(api, "restores", "show", restore_id)
    assert steps["status"] == "Finished"
    assert all(step["status"] == "Finished" for step in steps["steps"])
    assert appbackups(api, "restores", "show", restore_id, "--watch").returncode == 0

    archive = tmp_path / "snapshot.tar.gz"
    downloaded = as_json(api, "download", reference, "--file", str(archive))
    assert downloaded["path"] == str(archive)
    with tarfile.open(archive) as backup_record:
        members = [member for member in backup_record.getmembers() if member.isfile()]
    assert "db/db.backup" in {member.name for member in members}
    assert sorted(member.name.rsplit("/", 1)[-1] for member in members if member.name.startswith("tree/")) == sorted(
        source.files
    )
    dump_only = as_json(api, "download", f"{source.environment_id}/{short}", "--database-only", cwd=tmp_path)
    saved = (tmp_path / dump_only["fileName"]).read_bytes()
    # The dump alone, its data compressed again (the stored dump is uncompressed, in chunks).
    assert saved.startswith(b"PGDMP")
    assert len(saved) < backup["dumpSize"]

    uploaded = as_json(api, "upload", str(archive), "--env", source.environment_id, "--wait")
    assert (uploaded["status"], uploaded["tier"], uploaded["fileCount"]) == ("Finished", "uploaded", 3)
    assert uploaded["comment"] == "Uploaded snapshot.tar.gz"
    assert not any(CACHE.glob("appbackups/uploads/*.json"))  # its journal gone once the API has it
    commented = as_json(api, "upload", str(archive), "--env", source.environment_id, "--comment", "from prod")
    assert commented["comment"] == "from prod"

    assert as_json(api, "backups", "delete", reference, "--yes") == {
        "deleted": backup["id"],
        "environment": source.environment_id,
    }
    gone = appbackups(api, "backups", "show", reference)
    assert gone.returncode == 3
    assert "404" in gone.stderr


def test_a_refused_upload_fails_with_its_reason(api, apps, tmp_path):
    source, _ = apps
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive" * 1000)
    refused = appbackups(api, "upload", str(junk), "--env", source.environment_id, "--wait")
    assert refused.returncode == 1
    assert "neither a Full Snapshot archive" in refused.stdout


def test_exit_codes_and_configuration(api, apps, tmp_path):
    source, _ = apps
    assert appbackups(api, "envs", "show", "no-such-env").returncode == 3
    assert appbackups(api, "backups", "show", "some-id").returncode == 2  # neither ENV/ID nor --env
    assert appbackups(api, "backups", "edit", f"{source.environment_id}/x", "--keep-until", "soon").returncode == 2
    assert appbackups(api, "envs", "nonsense").returncode == 2
    unreachable = appbackups("http://127.0.0.1:9/api", "envs", "list")
    assert unreachable.returncode == 6
    assert "cannot reach" in unreachable.stderr

    restoring = appbackups(api, "restore", f"{source.environment_id}/latest", "--to", source.environment_id)
    assert restoring.returncode == 3  # no finished backup yet

    config = tmp_path / "config.toml"
    config.write_text(f'url = "{api}"\n', encoding="utf-8")
    from_file = subprocess.run(
        [str(COMMAND), "--config", str(config), "--json", "envs", "show", source.environment_id],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout)["id"] == source.environment_id
    missing = appbackups(api, "--config", str(tmp_path / "absent.toml"), "envs", "list")
    assert missing.returncode == 2
    from_environment = subprocess.run(
        [str(COMMAND), "--json", "envs", "show", source.environment_id],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "APPBACKUPS_URL": api, "APPBACKUPS_CONFIG": os.devnull},
        check=False,
    )
    assert from_environment.returncode == 0, from_environment.stderr


def test_webhooks_add_list_deliveries_and_remove(api):
    namespace = f"hooks-{os.getpid()}"
    added = appbackups(api, "webhooks", "add", namespace, "ops", "http://127.0.0.1:9/in", "--event",
                       "appbackups.backup.failed", "--event", "appbackups.restore.*")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "signing secret (shown once" in added.stdout
    secret = added.stdout.split("once, keep it with the receiver): ")[1].split()[0]
    assert secret.startswith("whsec_")
    [listed] = as_json(api, "webhooks", "list", namespace)
    assert (listed["id"], listed["secretSet"], listed["events"]) == (
        "ops",
        True,
        ["appbackups.backup.failed", "appbackups.restore.*"],
    )
    assert secret not in json.dumps(listed)
    table = appbackups(api, "webhooks", "list", namespace)
    assert "http://127.0.0.1:9/in" in table.stdout
    replaced = as_json(api, "webhooks", "add", namespace, "ops", "http://127.0.0.1:9/v2", "--keep-secret")
    assert (replaced["url"], replaced["events"], replaced["secretSet"]) == ("http://127.0.0.1:9/v2", ["*"], True)
    assert "secret" not in replaced
    assert as_json(api, "webhooks", "deliveries", namespace, "ops") == []
    refused = appbackups(api, "webhooks", "add", namespace, "lan", "http://10.0.0.1/in")
    assert refused.returncode == 2
    assert "a private address" in refused.stderr
    assert appbackups(api, "webhooks", "remove", namespace, "ops", "--yes").returncode == 0
    assert as_json(api, "webhooks", "list", namespace) == []
    assert appbackups(api, "webhooks", "deliveries", namespace, "ops").returncode == 3


def test_verify_a_backup_and_plan_a_restore_before_it_runs(api, apps):
    source, target = apps
    created = as_json(api, "backups", "create", source.environment_id, "--wait")
    reference = f"{source.environment_id}/{created['id']}"

    verified = appbackups(api, "backups", "verify", reference, "--wait")
    assert verified.returncode == 0, verified.stderr
    assert "checksums" in verified.stdout
    assert "Passed" in verified.stdout
    shown = as_json(api, "backups", "show", reference)
    assert shown["verification"]["status"] == "Passed"
    assert {check["name"] for check in shown["verification"]["checks"]} >= {"checksums", "load", "row_counts"}
    listed = appbackups(api, "backups", "list", source.environment_id)
    assert "verified" in listed.stdout

    # The target runs: the dry run says so and what would be needed, changes nothing, and exits 4.
    plan = appbackups(api, "restore", reference, "--to", target.environment_id, "--dry-run")
    assert plan.returncode == 4, plan.stderr
    assert "target_state" in plan.stdout
    assert f"appbackups envs stop {target.environment_id}" in plan.stdout
    assert as_json(api, "envs", "show", target.environment_id)["state"] == "Running"
    document = json.loads(
        appbackups(api, "--json", "restore", reference, "--to", target.environment_id, "--dry-run").stdout
    )
    assert (document["outcome"], document["stopNeeded"]) == ("fail", True)
    assert document["estimatedSeconds"] is not None  # from the drill above
