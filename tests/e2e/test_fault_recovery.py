"""Crashes, caused for real: the development host is SIGKILLed at named points of long work and started
again. Each case asserts the outcome (finished, or failed and fully undone), the data (the target
database compared row by row, the files by MD5), that nothing happened twice, that nothing stays
locked, and that the work resumed within the bound the lease sets."""

import hashlib
import subprocess
from pathlib import Path

import psycopg
import pytest
import requests

from shared.adapters.postgres import SCRATCH_PREFIX
from shared.backups.layout import FILES, FileEntry, backup_folder
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus, Tier
from shared.domain.environments import EnvironmentState
from shared.domain.operations import OperationStatus
from shared.domain.verification import CheckStatus, VerificationStatus
from shared.downloads.steps import archive_folder
from shared.drills.steps import scratch_database
from shared.errors import Conflict
from tests.support.appdata import create_scratch_app, md5_hex, source_and_target, table_contents
from tests.support.dumps import damage_chunk, stored_dump
from tests.support.faults import FaultHarness
from tests.support.polling import wait_for_status

pytestmark = pytest.mark.e2e


@pytest.fixture
def faults(private_stack, tmp_path):
    services, connection_string, _ = private_stack
    harness = FaultHarness(services, connection_string, tmp_path)
    yield harness
    harness.stop_all()


@pytest.fixture
def apps(private_stack, database_factory, postgres_admin_dsn):
    return source_and_target(private_stack[0], database_factory, postgres_admin_dsn, documents=8, customers=400)


def make_backup(api: str, app) -> dict:
    created = requests.post(f"{api}/environments/{app.environment_id}/backups", json={}, timeout=30)
    assert created.status_code == 202, created.text
    done = wait_for_status(api.removesuffix("/api") + created.headers["Location"], ("Processing",))
    assert done["status"] == "Finished", done
    return done


def dump_restores_to(services, backup, database_factory, postgres_admin_dsn, tmp_path: Path) -> dict:
    dump = stored_dump(services.stores, backup)
    assert hashlib.sha256(dump).hexdigest() == backup.dump_sha256
    (tmp_path / "db.backup").write_bytes(dump)
    database = database_factory()
    subprocess.run(
        ["pg_restore", "-O", "-x", "-h", "127.0.0.1", "-U", "postgres", "-d", database, str(tmp_path / "db.backup")],
        check=True,
        capture_output=True,
    )
    return table_contents(psycopg.conninfo.make_conninfo(postgres_admin_dsn, dbname=database))


def activity_of(services, environment_id, action: str) -> list:
    entries, _ = services.activity.page(environment_id, limit=100, continuation=None)
    return [entry for entry in entries if entry.action.value == action]


def assert_within_bound(recovery) -> None:
    assert recovery.resumed_after is not None
    assert recovery.resumed_after <= recovery.bound, (
        f"resumed {recovery.resumed_after:.1f} s after the kill; the bound is {recovery.bound:.1f} s"
    )


# -- backups -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["backup.dump.streaming", "backup.files.copying"])
def test_a_backup_killed_mid_way_resumes_and_finishes_once(
    faults, apps, point, database_factory, postgres_admin_dsn, tmp_path
):
    source, _ = apps
    services = faults.services

    def start(host):
        created = requests.post(f"{host.api}/environments/{source.environment_id}/backups", json={}, timeout=30)
        assert created.status_code == 202, created.text
        return created.json()["operationId"]

    recovery = faults.crash_and_recover(point, start)
    assert recovery.operation.status is OperationStatus.FINISHED, recovery.operation.error
    assert recovery.operation.step("dump").attempts == 2
    assert_within_bound(recovery)

    backups = list(services.backup_catalog.of_environment(source.environment_id))
    assert len(backups) == 1  # one request, one backup
    (backup,) = backups
    assert backup.status is BackupStatus.FINISHED
    assert backup.file_count == len(source.files)
    assert dump_restores_to(services, backup, database_factory, postgres_admin_dsn, tmp_path) == (
        source.table_contents()
    )
    folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
    entries = [FileEntry.from_line(line) for line in services.stores.backups.read_lines(folder + FILES) if line]
    assert {entry.uuid: entry.md5 for entry in entries} == source.referenced_files()
    for entry in entries:
        assert md5_hex(services.stores.content.read_bytes(entry.object)) == entry.md5
    finished = [entry for entry in activity_of(services, source.environment_id, "backup")]
    assert [entry.outcome.value for entry in finished] == ["FINISHED"]


# -- restores ----------------------------------------------------------------------------------------


def start_restore(faults, source, target):
    """A backup of the source on a host without crash points, then the restore request."""
    services = faults.services
    clean = faults.start_host()
    backup = make_backup(clean.api, source)
    clean.stop()

    def start(host):
        accepted = requests.post(
            f"{host.api}/environments/{source.environment_id}/backups/{backup['id']}/restore",
            json={"targetEnvironment": target.environment_id},
            timeout=30,
        )
        assert accepted.status_code == 202, accepted.text
        return accepted.json()["id"]

    return services, backup, start


def assert_unlocked_and_released(services, source, target, backup) -> None:
    environment = services.environment_catalog.get(target.environment_id)
    assert (environment.state, environment.active_restore_id) == (EnvironmentState.STOPPED, None)
    assert services.backup_catalog.get(source.environment_id, backup["id"]).in_use_by == ()


def pre_restore_backups(services, target) -> list:
    return [s for s in services.backup_catalog.of_environment(target.environment_id) if s.tier is Tier.PRE_RESTORE]


@pytest.mark.parametrize(
    ("point", "switch_attempts"),
    [
        ("restore.files.placing", 2),
        ("restore.database.loading", 2),
        ("restore.database.after_commit", 2),
    ],
)
def test_a_restore_killed_mid_way_resumes_and_leaves_exactly_the_backup(faults, apps, point, switch_attempts):
    source, target = apps
    services, backup, start = start_restore(faults, source, target)
    before_tables, before_files = target.table_contents(), target.stored_files()
    expected_tables = source.table_contents()
    seen = {}

    def after_kill(crashed):
        seen["tables"] = target.table_contents()
        if point == "restore.database.after_commit":  # past its point of no return: cancel is refused
            with pytest.raises(Conflict) as refused:
                services.restores.cancel(crashed.id, Principal(id="bob", name="Bob"))
            seen["refusal"] = refused.value

    recovery = faults.crash_and_recover(point, start, after_kill=after_kill)
    if point == "restore.database.after_commit":
        assert seen["tables"] == expected_tables  # the COMMIT had happened: the repeat must not redo it
        assert seen["refusal"].code == "past_point_of_no_return"
        assert "can no longer be cancelled" in seen["refusal"].detail
    else:
        assert seen["tables"] == before_tables  # the open transaction died with the process
    restore = recovery.operation
    assert restore.status is OperationStatus.FINISHED, restore.error
    assert restore.step("switch").attempts == switch_attempts
    assert_within_bound(recovery)

    assert target.table_contents() == expected_tables
    assert target.stored_files() == source.referenced_files()
    assert_unlocked_and_released(services, source, target, backup)
    (pre_restore,) = pre_restore_backups(services, target)  # exactly one, however often the step ran
    assert pre_restore.status is BackupStatus.FINISHED
    assert pre_restore.file_count == len(before_files)
    outcomes = [entry.outcome.value for entry in activity_of(services, target.environment_id, "restore")]
    assert outcomes == ["FINISHED"]


def test_a_restore_killed_during_its_undo_finishes_undoing_it(faults, apps):
    source, target = apps
    with source.connect() as connection:  # a dump of several chunks: the pre-flight reads only the first
        connection.execute("CREATE TABLE bulk AS SELECT n AS id, md5(n::text) AS note FROM generate_series(1, 60000) n")
    services, backup, start = start_restore(faults, source, target)
    backup_record = services.backup_catalog.get(source.environment_id, backup["id"])
    # A flipped byte in the dump's last chunk: the restore fails as it loads and must undo what it did.
    damage_chunk(services.stores, backup_record, last=True)
    before_tables, before_files = target.table_contents(), target.stored_files()

    recovery = faults.crash_and_recover("restore.undo", start)
    restore = recovery.operation
    assert restore.status is OperationStatus.FAILED
    assert restore.error_step == "switch"
    assert restore.step("undo").attempts == 2
    assert_within_bound(recovery)

    assert target.table_contents() == before_tables
    assert target.stored_files() == before_files  # the file documents it had placed are gone again
    assert_unlocked_and_released(services, source, target, backup)
    outcomes = [entry.outcome.value for entry in activity_of(services, target.environment_id, "restore")]
    assert outcomes == ["FAILED"]


# -- downloads and uploads ---------------------------------------------------------------------------


def test_a_download_killed_while_building_its_archive_is_built_once(faults, apps):
    source, _ = apps
    services = faults.services
    clean = faults.start_host()
    backup = make_backup(clean.api, source)
    clean.stop()
    url = f"/environments/{source.environment_id}/backups/{backup['id']}/download"

    def start(host):
        requested = requests.post(host.api + url, json={"dataType": "files_and_database"}, timeout=30)
        assert requested.status_code == 202, requested.text
        return requested.json()["operationId"]

    recovery = faults.crash_and_recover("download.archive.building", start)
    download = recovery.operation
    assert download.status is OperationStatus.FINISHED, download.error
    assert download.step("prepare").attempts == 2
    assert_within_bound(recovery)
    archives = list(services.stores.archives.list(archive_folder(download)))
    assert len(archives) == 1  # one archive, not one per attempt
    content = services.stores.archives.read_bytes(archives[0].name)
    assert hashlib.sha256(content).hexdigest() == download.output("prepare", "archiveSha256")
    assert services.backup_catalog.get(source.environment_id, backup["id"]).in_use_by == ()


def test_an_upload_killed_during_its_ingest_adds_one_backup(faults, apps):
    source, target = apps
    services = faults.services
    clean = faults.start_host()
    backup = make_backup(clean.api, source)
    url = f"{clean.api}/environments/{source.environment_id}/backups/{backup['id']}/download"
    requests.post(url, json={"dataType": "files_and_database"}, timeout=30)
    ready = wait_for_status(url, ("Processing",))
    archive = requests.get(ready["url"], timeout=60).content
    started = requests.post(f"{clean.api}/environments/{target.environment_id}/uploads", timeout=30).json()
    put = requests.put(started["uploadUrl"], data=archive, headers={"x-ms-blob-type": "BlockBlob"}, timeout=60)
    assert put.status_code == 201
    clean.stop()

    def start(host):
        completed = requests.post(host.api.removesuffix("/api") + started["completeUrl"], timeout=30)
        assert completed.status_code == 202, completed.text
        return completed.json()["operationId"]

    recovery = faults.crash_and_recover("upload.ingest.files", start)
    upload = recovery.operation
    assert upload.status is OperationStatus.FINISHED, upload.error
    assert upload.step("ingest").attempts == 2
    assert_within_bound(recovery)
    uploaded = [s for s in services.backup_catalog.of_environment(target.environment_id) if s.tier is Tier.UPLOADED]
    assert len(uploaded) == 1
    assert uploaded[0].status is BackupStatus.FINISHED
    assert uploaded[0].file_count == len(source.files)
    assert uploaded[0].dump_sha256 == backup["dumpSha256"]
    outcomes = [entry.outcome.value for entry in activity_of(services, target.environment_id, "upload")]
    assert outcomes == ["FINISHED"]


# -- restore drills --------------------------------------------------------------------------------


def scratch_databases(admin_dsn: str) -> list[str]:
    with psycopg.connect(admin_dsn) as connection:
        rows = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (SCRATCH_PREFIX + "%",))
        return [row[0] for row in rows]


def start_drill(faults, source):
    clean = faults.start_host()
    backup = make_backup(clean.api, source)
    clean.stop()

    def start(host):
        url = f"{host.api}/environments/{source.environment_id}/backups/{backup['id']}/verify"
        accepted = requests.post(url, timeout=30)
        assert accepted.status_code == 202, accepted.text
        return accepted.json()["id"]

    return backup, start


@pytest.mark.parametrize(
    ("point", "attempts"), [("drill.database.loading", ("load", 2)), ("drill.dropped", ("finish", 2))]
)
def test_a_drill_killed_mid_way_resumes_passes_and_drops_its_scratch_database(
    faults, apps, point, attempts, postgres_admin_dsn
):
    source, _ = apps
    services = faults.services
    backup, start = start_drill(faults, source)
    before = (source.table_contents(), source.stored_files())
    left_by_kill = {}

    def after_kill(crashed):
        left_by_kill["scratch"] = scratch_databases(postgres_admin_dsn)

    recovery = faults.crash_and_recover(point, start, after_kill=after_kill)
    drill = recovery.operation
    assert drill.status is OperationStatus.FINISHED, drill.error
    assert drill.step(attempts[0]).attempts == attempts[1]
    assert_within_bound(recovery)
    # Other workers' tests make scratch databases on the same server: this drill's own is the one that counts.
    if point == "drill.database.loading":
        assert scratch_database(drill.id) in left_by_kill["scratch"]  # the kill left it half loaded
    assert scratch_database(drill.id) not in scratch_databases(postgres_admin_dsn)
    backup_record = services.backup_catalog.get(source.environment_id, backup["id"])
    assert backup_record.verification.status is VerificationStatus.PASSED
    assert backup_record.verification.operation_id == drill.id
    assert all(check.status is not CheckStatus.FAILED for check in backup_record.verification.checks)
    assert backup_record.in_use_by == ()
    outcomes = [entry.outcome.value for entry in activity_of(services, source.environment_id, "verify")]
    assert outcomes == ["FINISHED"]
    assert (source.table_contents(), source.stored_files()) == before  # a drill never touches its environment


def test_a_drill_killed_during_its_undo_still_drops_its_scratch_database(faults, apps, postgres_admin_dsn):
    source, _ = apps
    services = faults.services
    backup, start = start_drill(faults, source)
    backup_record = services.backup_catalog.get(source.environment_id, backup["id"])
    damage_chunk(services.stores, backup_record)  # the checksum check and the load fail: the drill fails and undoes

    recovery = faults.crash_and_recover("drill.undo", start)
    drill = recovery.operation
    assert drill.status is OperationStatus.FAILED
    assert drill.step("undo").attempts == 2
    assert_within_bound(recovery)
    assert scratch_database(drill.id) not in scratch_databases(postgres_admin_dsn)
    backup_record = services.backup_catalog.get(source.environment_id, backup["id"])
    assert backup_record.verification.status is VerificationStatus.FAILED
    assert backup_record.in_use_by == ()
    outcomes = [entry.outcome.value for entry in activity_of(services, source.environment_id, "verify")]
    assert outcomes == ["FAILED"]


# -- scale-out -----------------------------------------------------------------------------------------


def test_two_hosts_on_one_storage_account_do_each_job_exactly_once(faults, apps, database_factory, postgres_admin_dsn):
    source, target = apps
    services = faults.services
    first, second = faults.start_host(), faults.start_host()
    other = create_scratch_app(
        services, database_factory(), postgres_admin_dsn, namespace=source.namespace, state="Stopped", documents=2
    )
    backups = []
    for host in (first, second, first, second):
        created = requests.post(f"{host.api}/environments/{source.environment_id}/backups", json={}, timeout=30)
        assert created.status_code == 202, created.text
        backups.append(created.json())
        services.operations.wake(created.json()["operationId"])  # a duplicate message, for good measure
    done = [
        wait_for_status(first.api.removesuffix("/api") + f"/api/environments/{source.environment_id}/backups/{b['id']}",
                        ("Processing",))
        for b in backups
    ]  # fmt: skip
    assert [backup["status"] for backup in done] == ["Finished"] * 4
    restores = []
    for host, into in ((first, target), (second, other)):
        accepted = requests.post(
            f"{host.api}/environments/{source.environment_id}/backups/{done[0]['id']}/restore",
            json={"targetEnvironment": into.environment_id},
            timeout=30,
        )
        assert accepted.status_code == 202, accepted.text
        restores.append(accepted.json()["id"])
        for _ in range(3):
            services.operations.wake(accepted.json()["id"])
    for restore_id, host in zip(restores, (second, first), strict=True):  # each followed on the other host
        status = wait_for_status(f"{host.api}/restores/{restore_id}", ("Running", "Stalled"))
        assert status["status"] == "Finished", status
        assert all(step["attempts"] == 1 for step in status["steps"]), status["steps"]

    expected = source.table_contents()
    for into in (target, other):
        assert into.table_contents() == expected
        assert len(pre_restore_backups(services, into)) == 1
        assert [e.outcome.value for e in activity_of(services, into.environment_id, "restore")] == ["FINISHED"]
    made = list(services.backup_catalog.of_environment(source.environment_id))
    assert len(made) == 4
    assert all(services.operations.get(s.operation_id).step("dump").attempts == 1 for s in made)
    assert len(activity_of(services, source.environment_id, "backup")) == 4
