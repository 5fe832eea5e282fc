"""The nights view on the twins: per environment, its night's scheduled backup not due, waiting, running, done
or failed, with counts; and its route: the caller's namespaces only, 400 for a bad date."""

from datetime import UTC, datetime

import pytest

from shared.backups.steps import BackupHooks
from shared.bootstrap import install_services
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import Permission, Principal
from shared.domain.backups import Tier
from shared.domain.environments import MissingFiles
from shared.domain.nights import NightState
from tests.support.core import CoreWorld
from tests.support.functions import call
from tests.support.memory import memory_services

NIGHT = datetime(2026, 10, 22, 2, tzinfo=UTC)


def states(night) -> dict[str, tuple[NightState, str]]:
    return {entry.environment.id: (entry.state, entry.detail) for entry in night.environments}


def test_a_night_goes_from_waiting_through_running_to_done_or_failed():
    world = CoreWorld()
    good = [world.app(documents=2) for _ in range(3)]
    broken = world.app(documents=1, missing_files=MissingFiles.FAIL)
    broken.add_document(upload=False)
    deploying = world.app(state="Deploying")
    view = world.services.nights

    before = view.night(NIGHT.date(), None)
    assert {state for state, _ in states(before).values()} == {NightState.NOT_DUE}

    world.services.scheduler.fan_out(Tier.NIGHTLY, NIGHT, spread=False)
    queued = states(view.night(NIGHT.date(), None))
    assert queued[deploying.environment_id] == (NightState.NOT_DUE, "the environment is Deploying")
    assert all(queued[app.environment_id][0] is NightState.WAITING for app in [*good, broken])

    scheduled = world.queues["scheduled-backups"]
    while scheduled.sent:
        message = scheduled.pop().body
        world.services.scheduler.run(message["environmentId"], Tier(message["tier"]), NIGHT.date())
    seen_while_dumping = []

    def meanwhile(exported: object) -> None:
        world.services.backup_steps.hooks = BackupHooks()
        seen_while_dumping.append(view.night(NIGHT.date(), None))

    world.services.backup_steps.hooks = BackupHooks(after_snapshot_exported=meanwhile)
    world.run()

    [during] = seen_while_dumping
    assert during.counts[NightState.RUNNING] == 1
    assert during.counts[NightState.WAITING] == 3
    assert during.counts[NightState.NOT_DUE] == 1

    after = view.night(NIGHT.date(), None)
    assert after.counts == {
        NightState.NOT_DUE: 1,
        NightState.WAITING: 0,
        NightState.RUNNING: 0,
        NightState.DONE: 3,
        NightState.FAILED: 1,
    }
    final = {entry.environment.id: entry for entry in after.environments}
    for app in good:
        backup = world.services.backup_catalog.get(app.environment_id, str(final[app.environment_id].backup_id))
        assert backup.tier is Tier.NIGHTLY
    assert "is referenced by the database but its blob" in final[broken.environment_id].detail
    only_other = view.night(NIGHT.date(), {"elsewhere"})
    assert only_other.environments == ()


GLOBAL = "global-oid"


def registration(namespace: str, state: str = "Running") -> dict:
    return {
        "namespace": namespace,
        "appName": "app",
        "displayName": f"{namespace} app",
        "state": state,
        "database": {"host": "h", "database": "d", "user": "u"},
        "files": {"container": "files"},
    }


@pytest.fixture
def services():
    services = memory_services(easy_auth_enabled=True, global_admins=frozenset({GLOBAL}))
    system = Principal(GLOBAL, "setup")
    for environment_id, namespace in (("prod", "ns"), ("acc", "ns"), ("elsewhere", "other")):
        body = EnvironmentBody.model_validate(registration(namespace))
        services.environments.put(environment_id, body.to_registration(), system)
    services.access.grant("ns", "ada-oid", frozenset({Permission.MANAGE_BACKUPS}), "ada", system)
    install_services(services)
    yield services
    install_services(None)


def get_night(night: str, caller: str):
    headers = {"X-MS-CLIENT-PRINCIPAL-ID": caller, "X-MS-CLIENT-PRINCIPAL-NAME": caller}
    return call("get_night", "GET", f"schedules/nights/{night}", route={"night": night}, headers=headers)


def test_the_route_shows_the_callers_namespaces_with_counts(services):
    services.scheduler.fan_out(Tier.NIGHTLY, NIGHT, spread=False)
    status, _, document = get_night("2026-10-22", "ada-oid")
    assert status == 200
    assert document["night"] == "2026-10-22"
    assert [item["environmentId"] for item in document["environments"]] == ["acc", "prod"]
    assert document["counts"] == {"notDue": 0, "waiting": 2, "running": 0, "done": 0, "failed": 0, "total": 2}
    assert document["environments"][0]["state"] == "waiting"
    status, _, document = get_night("2026-10-22", GLOBAL)
    assert document["counts"]["total"] == 3
    status, _, document = get_night("2026-10-21", "nobody-oid")
    assert (status, document["counts"]["total"]) == (200, 0)


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "20261022", "2026-10-22T02:00"])
def test_a_bad_date_is_400_with_a_reason(services, bad):
    status, _, document = get_night(bad, "ada-oid")
    assert status == 400
    assert document["code"] == "invalid_night"
    assert "YYYY-MM-DD" in document["detail"]
