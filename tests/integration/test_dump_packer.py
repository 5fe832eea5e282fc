"""A large dump chunked and packed by a process of its own (shared/dumps/packer.py), against real Azurite and
PostgreSQL: its backups restore equal to their source in a history mixed with dumps packed by the worker, its
requests are counted, and when it is killed, aborted or left by its worker it commits nothing."""

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from shared.adapters.metering import StorageMeter
from shared.backups.layout import MANIFEST, backup_folder
from shared.config import StorageConnection
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus
from shared.domain.operations import OperationStatus
from shared.dumps.packer import PackerFailed, ProcessDumpWriter
from shared.dumps.store import CHUNK_LIST, read_chunk_list
from tests.support.appdata import source_and_target
from tests.support.dumps import stored_dump
from tests.support.restoring import Harness

pytestmark = pytest.mark.integration

ADA = Principal(id="ada", name="Ada")
BULK = (
    "CREATE TABLE bulk (id bigint PRIMARY KEY, note text); "
    "INSERT INTO bulk SELECT n, md5(n::text) || repeat(' lorem', (n % 7)::int) FROM generate_series(1, 60000) n"
)
IN_ITS_OWN_PROCESS = {"APPBACKUPS_DUMP_PROCESS_MIN_MB": "0"}
IN_THE_WORKER = {"APPBACKUPS_DUMP_PROCESS_MIN_MB": "100000"}


def digest(contents: dict) -> str:
    return hashlib.sha256(json.dumps(contents, default=str, sort_keys=True).encode()).hexdigest()


def packers() -> list[int]:
    """The packer processes this test process started that are still alive."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        zombie = "State:\tZ" in status
        if parent == os.getpid() and b"shared.dumps.packer" in command and not zombie:
            found.append(int(entry.name))
    return found


@pytest.fixture
def meter():
    return StorageMeter()


@pytest.fixture
def apps(storage_services, storage_connection_string, database_factory, postgres_admin_dsn):
    harness = Harness(storage_connection_string, **IN_ITS_OWN_PROCESS)
    source, target = source_and_target(harness.services, database_factory, postgres_admin_dsn)
    with source.connect() as connection:
        connection.execute(BULK)
    return source, target


def restore(harness, source, backup_id, target) -> None:
    operation = harness.services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
    harness.drain()
    done = harness.services.restores.get(operation.id)
    assert done.status is OperationStatus.FINISHED, done.error


def test_a_history_of_dumps_packed_in_its_own_process_and_in_the_worker_restores_every_backup(
    apps, storage_connection_string, meter
):
    source, target = apps
    packed_apart = Harness(storage_connection_string, meter=meter, **IN_ITS_OWN_PROCESS)
    packed_here = Harness(storage_connection_string, **IN_THE_WORKER)
    taken = []
    for step, harness in enumerate((packed_apart, packed_here, packed_apart, packed_apart)):
        with source.connect() as connection:
            connection.execute(
                "UPDATE bulk SET note = %s WHERE id BETWEEN %s AND %s", (f"v{step}", step * 9000, step * 9000 + 99)
            )
            if step == 2:
                connection.execute("ALTER TABLE bulk ADD COLUMN tag text DEFAULT 'new'")
        with meter.measuring() as measured:
            backup_id = harness.backup(source.environment_id, ADA)
        backup = harness.services.backup_catalog.get(source.environment_id, backup_id)
        assert backup.status is BackupStatus.FINISHED
        taken.append((harness, backup, digest(source.table_contents())))
        packer_peak = harness.services.operations.get(backup.operation_id).output("dump", "packerPeakRssMiB")
        assert (packer_peak is not None) is (harness is packed_apart), packer_peak
        if harness is packed_apart:  # the packer's pack writes are counted with the worker's requests
            requests = measured.requests.items()
            assert sum(
                count for request, count in requests if (request.container, request.kind) == ("content", "write")
            )
    folder = backup_folder(source.namespace, source.environment_id, taken[-1][1].id)
    manifest = json.loads(packed_apart.services.stores.backups.read_bytes(folder + MANIFEST))
    assert manifest["database"]["layout"] == "chunks"
    assert manifest["database"]["newChunks"] < manifest["database"]["chunkCount"] / 2  # the previous dump's reused
    assert not packers()
    for harness, backup, expected in taken:
        assert hashlib.sha256(stored_dump(harness.services.stores, backup)).hexdigest() == backup.dump_sha256
        restore(harness, source, backup.id, target)
        assert digest(target.table_contents()) == expected


def test_a_killed_packer_fails_the_attempt_and_the_next_attempt_makes_the_backup(apps, storage_connection_string):
    source, target = apps
    harness = Harness(storage_connection_string, **IN_ITS_OWN_PROCESS)
    expected = digest(source.table_contents())
    killed = []

    def kill_the_packer() -> None:
        if not killed:
            for pid in packers():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    harness.services.backup_steps.hooks.after_first_dump_chunk = kill_the_packer
    started = time.monotonic()
    backup_id = harness.backup(source.environment_id, ADA)
    backup = harness.services.backup_catalog.get(source.environment_id, backup_id)
    assert killed
    assert backup.status is BackupStatus.FINISHED
    operation = harness.services.operations.get(backup.operation_id)
    assert operation.step("dump").attempts == 2
    # One retry's wait (APPBACKUPS_OPERATION_RETRY_SECONDS=1, doubled at most once) and two dumps of a small database.
    assert time.monotonic() - started < 30
    assert not packers()
    restore(harness, source, backup.id, target)
    assert digest(target.table_contents()) == expected


def _writer(connection: StorageConnection, folder: str) -> ProcessDumpWriter:
    return ProcessDumpWriter(connection, "packer-test", folder, None)


def test_a_packer_whose_worker_is_gone_or_aborts_commits_nothing(storage_services, storage_connection_string):
    backups = storage_services.stores.backups
    connection = StorageConnection(connection_string=storage_connection_string)
    content = os.urandom(3 * 1024 * 1024)

    left = _writer(connection, "packer-test/left/")
    left.write_all([content[: 1024 * 1024]])
    left._process.stdin.close()  # the worker's end of the pipe, closed as when the worker dies mid-dump
    assert left._process.wait(timeout=30) == 1
    assert backups.info("packer-test/left/" + CHUNK_LIST) is None

    aborted = _writer(connection, "packer-test/aborted/")
    aborted.write_all([content])
    aborted.abort()
    assert aborted._process.poll() is not None
    assert backups.info("packer-test/aborted/" + CHUNK_LIST) is None

    committed = _writer(connection, "packer-test/committed/")
    committed.write_all([content[:1000], content[1000:]])
    layout = committed.commit()
    assert layout["chunkCount"] == len(list(read_chunk_list(backups, "packer-test/committed/")))
    assert committed.size == len(content)
    assert committed.sha256 == hashlib.sha256(content).hexdigest()
    assert not packers()


def test_a_packer_that_cannot_reach_storage_says_why(storage_services, storage_connection_string):
    wrong_key = storage_connection_string.replace("AccountKey=", "AccountKey=AAAA")
    writer = _writer(StorageConnection(connection_string=wrong_key), "packer-test/refused/")
    writer.write_all([os.urandom(6 * 1024 * 1024)])  # the packer fails at its first pack, and answers why
    with pytest.raises(PackerFailed) as raised:
        writer.commit()
    assert "403" in str(raised.value) or "authoriz" in str(raised.value).lower()
    writer.abort()
    assert not packers()
    assert storage_services.stores.backups.info("packer-test/refused/" + CHUNK_LIST) is None
