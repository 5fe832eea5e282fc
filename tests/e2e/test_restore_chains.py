"""A user's week through the development host: restore into an environment, back it up, change it,
restore that backup, go back through the pre-restore backup, drill a backup taken after a restore.
Every step ends Finished with the target exactly what it should be: schema, rows, sequences and files."""

import pytest
import requests

from tests.support.appdata import source_and_target
from tests.support.fingerprints import fingerprint
from tests.support.polling import wait_for_status

pytestmark = pytest.mark.e2e


@pytest.fixture
def apps(storage_services, database_factory, postgres_admin_dsn):
    return source_and_target(storage_services, database_factory, postgres_admin_dsn, documents=4, target_documents=2)


def settled(api: str, accepted: requests.Response, busy: tuple[str, ...] = ("Processing", "Running")) -> dict:
    assert accepted.status_code == 202, accepted.text
    return wait_for_status(api.removesuffix("/api") + accepted.headers["Location"], busy, timeout=180)


def back_up(api: str, app) -> dict:
    done = settled(api, requests.post(f"{api}/environments/{app.environment_id}/backups", json={}, timeout=30))
    assert done["status"] == "Finished", done
    return done


def restore(api: str, app, backup: dict, target) -> dict:
    url = f"{api}/environments/{app.environment_id}/backups/{backup['id']}/restore"
    done = settled(api, requests.post(url, json={"targetEnvironment": target.environment_id}, timeout=30))
    assert done["status"] == "Finished", done["error"]
    return done


def state(app) -> tuple:
    """What a backup of the app holds: its database as pg_dump sees it, and its file documents by MD5."""
    return fingerprint(app.dsn), app.stored_files()


def test_restore_back_up_restore_and_the_way_back_each_leave_the_target_exactly_its_source(api, apps):
    source, target = apps
    with source.connect() as connection:  # a deployment: a column, a table with a sequence, an index
        connection.execute('ALTER TABLE "sales$customer" ADD COLUMN vip boolean DEFAULT false')
        connection.execute('CREATE TABLE "sales$invoice" (id serial PRIMARY KEY, customer bigint, total numeric)')
        connection.execute('INSERT INTO "sales$invoice" (customer, total) SELECT id, id * 1.5 FROM "sales$customer"')
        connection.execute('CREATE INDEX "idx_sales$invoice_customer" ON "sales$invoice" (customer)')
    of_source = back_up(api, source)
    expected = state(source)

    restore(api, source, of_source, target)
    assert state(target) == expected

    of_restored = back_up(api, target)  # a backup of an environment that was restored into
    with target.connect() as connection:  # the app goes on: rows change, a column goes
        connection.execute('INSERT INTO "sales$invoice" (customer, total) VALUES (1, 99)')
        connection.execute('DELETE FROM "sales$customer" WHERE id > 5')
        connection.execute('ALTER TABLE "sales$customer" DROP COLUMN vip')
    target.next_id = 1000  # past the restored file documents' ids
    target.add_document(b"written after the backup")
    changed = state(target)

    again = restore(api, target, of_restored, target)
    assert state(target) == expected, fingerprint(target.dsn).differences(expected[0])

    pre_restore = again["details"]["preRestoreSnapshotId"]
    restore(api, target, {"id": pre_restore}, target)  # the way back
    assert state(target) == changed

    drill = settled(
        api, requests.post(f"{api}/environments/{target.environment_id}/backups/{of_restored['id']}/verify", timeout=30)
    )
    assert drill["status"] == "Finished", drill
    verified = requests.get(f"{api}/environments/{target.environment_id}/backups/{of_restored['id']}", timeout=30)
    assert verified.json()["verification"]["status"] == "Passed", verified.json()["verification"]
