"""DELETE /api/environments/{env}: the registration goes, the backups stay (listed, downloadable,
restorable into another environment of the namespace), the activity log keeps the record; refused while
work runs on the environment. On in-memory storage, through the registered functions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.bootstrap import install_services
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import Permission, Principal
from shared.domain.backups import Tier
from shared.domain.downloads import DataType
from tests.support.functions import call
from tests.support.memory import memory_services

ADMIN = Principal("admin-oid", "Admin")
ADMIN_HEADERS = {"X-MS-CLIENT-PRINCIPAL-ID": "admin-oid", "X-MS-CLIENT-PRINCIPAL-NAME": "Admin"}
MANAGER_HEADERS = {"X-MS-CLIENT-PRINCIPAL-ID": "manager-oid", "X-MS-CLIENT-PRINCIPAL-NAME": "Manager"}


def registration(namespace: str = "ns", state: str = "Stopped") -> dict:
    return {
        "namespace": namespace,
        "appName": "app",
        "displayName": "An environment",
        "state": state,
        "database": {"host": "h", "database": "d", "user": "u"},
        "files": {"container": "files"},
    }


@pytest.fixture
def services():
    services = memory_services(easy_auth_enabled=True, global_admins=frozenset())
    for environment, state in (("old", "Stopped"), ("acc", "Stopped"), ("prod", "Running")):
        services.environments.put(
            environment, EnvironmentBody.model_validate(registration(state=state)).to_registration(), ADMIN
        )
    services.access.grant("ns", "admin-oid", frozenset({Permission.NAMESPACE_ADMIN}), "Admin", ADMIN)
    services.access.grant("ns", "manager-oid", frozenset({Permission.MANAGE_BACKUPS}), "Manager", ADMIN)
    install_services(services)
    yield services
    install_services(None)


def finished_backup(services, environment: str = "old") -> str:
    backup = services.backups.record(environment, ADMIN)
    finished = backup.finished(backup.created_on, dump_size=1, dump_sha256="0" * 64)
    return services.backup_catalog.save(finished).id


def deregister(environment: str = "old", headers=ADMIN_HEADERS):
    return call("deregister_environment", "DELETE", f"environments/{environment}", route={"env": environment},
                headers=headers)  # fmt: skip


def as_admin(name: str, method: str, route: dict, body=None, params=None):
    return call(name, method, "x", route=route, body=body, headers=ADMIN_HEADERS, params=params)


def test_the_registration_goes_and_the_backups_stay(services):
    backup = finished_backup(services)
    status, headers, document = deregister()
    assert status == 200, document
    assert (document["state"], document["deregisteredBy"]) == ("Deregistered", "Admin")
    assert headers["ETag"] == document["etag"]

    listed = as_admin("list_environments", "GET", {})[2]["items"]
    assert [item["id"] for item in listed] == ["acc", "prod"]
    with_gone = as_admin("list_environments", "GET", {}, params={"deregistered": "true"})[2]["items"]
    assert {item["id"]: item["state"] for item in with_gone}["old"] == "Deregistered"
    assert as_admin("get_environment", "GET", {"env": "old"})[2]["state"] == "Deregistered"

    # The backups: listed, read, editable, downloadable, restorable into another environment of the namespace.
    assert [item["id"] for item in as_admin("list_backups", "GET", {"env": "old"})[2]["items"]] == [backup]
    assert as_admin("get_backup", "GET", {"env": "old", "id": backup})[0] == 200
    assert as_admin("edit_backup", "PATCH", {"env": "old", "id": backup}, {"comment": "kept"})[2]["comment"] == "kept"
    status, _, document = as_admin("request_download", "POST", {"env": "old", "id": backup}, {})
    assert status in (200, 202), document
    status, _, document = as_admin("restore_backup", "POST", {"env": "old", "id": backup}, {"targetEnvironment": "acc"})
    assert status == 202, document

    # A member with Manage Apps Backups still reaches them: the tombstone keeps the namespace.
    status, _, document = call("list_backups", "GET", "x", route={"env": "old"}, headers=MANAGER_HEADERS)
    assert (status, [item["id"] for item in document["items"]]) == (200, [backup])

    activity = as_admin("list_activity", "GET", {"env": "old"})[2]["items"]
    (entry,) = [item for item in activity if item["action"] == "deregister"]
    assert (entry["outcome"], entry["actorName"]) == ("FINISHED", "Admin")
    assert entry["message"] == "Environment deregistered; its 1 backup stay until they expire."


def test_what_a_deregistered_environment_refuses(services):
    finished_backup(services)
    deregister()
    refused = [
        as_admin("create_backup", "POST", {"env": "old"}, {"comment": "x"}),
        as_admin("start_upload", "POST", {"env": "old"}, {}),
        as_admin("start_environment", "POST", {"env": "old"}),
        as_admin("stop_environment", "POST", {"env": "old"}),
    ]
    for status, _, document in refused:
        assert (status, document["code"]) == (409, "environment_deregistered"), document
        assert "namespace ns" in document["detail"]
    backup = finished_backup(services, "prod")
    status, _, document = as_admin(
        "restore_backup", "POST", {"env": "prod", "id": backup}, {"targetEnvironment": "old"}
    )
    assert (status, document["code"]) == (409, "environment_deregistered")
    status, _, document = deregister()
    assert (status, document["code"]) == (404, "environment_deregistered")


def test_nothing_schedules_or_checks_it(services):
    deregister()
    fan_out = services.scheduler.fan_out(Tier.NIGHTLY, services.environment_catalog.get("acc").created_on)
    assert "old" not in fan_out.queued
    assert {item.environment for item in services.health.freshness()} == {"acc", "prod"}


def test_refused_while_work_runs_on_it(services):
    restoring = finished_backup(services, "prod")
    services.restores.request("prod", restoring, "old", ADMIN)  # a restore into "old": it is Restoring
    status, _, document = deregister()
    assert (status, document["code"]) == (409, "restore_in_progress")

    status, _, document = deregister("acc")
    assert status == 200
    services.environments.put(
        "acc", EnvironmentBody.model_validate(registration()).to_registration(), ADMIN
    )  # registered again
    processing = services.backups.record("acc", ADMIN)
    status, _, document = deregister("acc")
    assert (status, document["code"]) == (409, "environment_busy")
    assert processing.id in document["detail"]
    assert document["work"] == [f"backup {processing.id} is being made (manual)"]


def test_refused_while_a_download_relies_on_one_of_its_backups(services):
    backup = finished_backup(services)
    services.downloads.request("old", backup, DataType.DATABASE_ONLY, ADMIN)
    status, _, document = deregister()
    assert (status, document["code"]) == (409, "environment_busy")
    assert "in use by" in document["detail"]


def test_only_a_namespace_admin_deregisters(services):
    status, _, document = deregister(headers=MANAGER_HEADERS)
    assert (status, document["code"]) == (403, "permission_missing")
    status, _, document = deregister("nope")
    assert (status, document["code"]) == (404, "environment_not_found")


def test_registered_again_in_its_own_namespace_only(services):
    deregister()
    # The tombstone's namespace decides who may register it again (its admins), and where.
    status, _, document = call("put_environment", "PUT", "x", route={"env": "old"}, body=registration("other"),
                               headers=MANAGER_HEADERS)  # fmt: skip
    assert (status, document["code"]) == (403, "permission_missing")
    status, _, document = as_admin("put_environment", "PUT", {"env": "old"}, registration("other"))
    assert (status, document["code"]) == (409, "namespace_immutable")
    status, _, document = as_admin("put_environment", "PUT", {"env": "old"}, registration(state="Deregistered"))
    assert (status, document["code"]) == (422, "state_reserved")
    status, headers, document = as_admin("put_environment", "PUT", {"env": "old"}, registration(state="Running"))
    assert (status, document["state"], document["deregisteredOn"]) == (201, "Running", None)
    assert headers["Location"] == "/api/environments/old"
    assert as_admin("list_activity", "GET", {"env": "old"})[2]["items"][0]["message"].startswith(
        "Environment registered again"
    )


def test_the_tombstone_round_trips_through_the_catalog(services):
    deregister()
    tombstone = services.environment_catalog.get("old")
    assert not tombstone.registered
    assert tombstone.deregistered_by == "Admin"
    assert tombstone.deregistered_on is not None
    assert tombstone.deregistered_on - tombstone.created_on < timedelta(hours=1)
    assert [environment.id for environment in services.environment_catalog.all()] == ["acc", "old", "prod"]
    assert [environment.id for environment in services.environment_catalog.registered()] == ["acc", "prod"]
