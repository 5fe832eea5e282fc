import pytest

from shared.contracts.environments import EnvironmentBody
from shared.domain.access import Principal
from shared.domain.activity import Action
from shared.domain.environments import EnvironmentState
from shared.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from tests.support.memory import memory_services

ADA = Principal(id="ada", name="Ada")


def body(**changes) -> EnvironmentBody:
    document = {
        "namespace": "ns",
        "appName": "app",
        "displayName": "Production",
        "state": "Running",
        "database": {
            "host": "127.0.0.1",
            "database": "prod",
            "user": "postgres",
            "passwordSetting": "PROD_DB_PASSWORD",
        },
        "files": {"container": "files", "prefix": "prod/"},
        "modelVersion": "1.0",
    }
    document.update(changes)
    return EnvironmentBody.model_validate(document)


@pytest.fixture
def services():
    return memory_services()


def test_register_then_update(services):
    created, is_new = services.environments.put("prod", body().to_registration(), ADA)
    assert is_new
    assert created.database.password_setting == "PROD_DB_PASSWORD"
    updated, is_new = services.environments.put("prod", body(deploymentPackage="app_2.mda").to_registration(), ADA)
    assert not is_new
    assert updated.deployment_package == "app_2.mda"
    assert updated.created_on == created.created_on
    assert updated.updated_on > created.updated_on
    assert updated.etag != created.etag
    actions = [entry.action for entry in services.activity.page("prod", limit=10, continuation=None)[0]]
    assert actions == [Action.UPDATE, Action.REGISTER]


def test_if_match_guards_against_lost_updates(services):
    created, _ = services.environments.put("prod", body().to_registration(), ADA)
    services.environments.put("prod", body(displayName="Changed").to_registration(), ADA, if_match=created.etag)
    with pytest.raises(PreconditionFailed):
        services.environments.put("prod", body(displayName="Stale").to_registration(), ADA, if_match=created.etag)
    assert services.environments.get("prod").display_name == "Changed"


def test_if_match_on_a_missing_environment_fails(services):
    with pytest.raises(PreconditionFailed):
        services.environments.put("prod", body().to_registration(), ADA, if_match='W/"x"')


def test_concurrent_write_between_read_and_save_conflicts(services):
    services.environments.put("prod", body().to_registration(), ADA)
    stale = services.environment_catalog.get("prod")
    services.environments.stop("prod", ADA)
    with pytest.raises(Conflict) as caught:
        services.environment_catalog.save(stale)
    assert caught.value.code == "concurrent_update"
    assert services.environments.get("prod").state is EnvironmentState.STOPPED


def test_namespace_cannot_change(services):
    services.environments.put("prod", body().to_registration(), ADA)
    with pytest.raises(Conflict) as caught:
        services.environments.put("prod", body(namespace="other").to_registration(), ADA)
    assert caught.value.code == "namespace_immutable"


def test_restoring_is_reserved(services):
    with pytest.raises(Unprocessable):
        services.environments.put("prod", body(state="Restoring").to_registration(), ADA)


def test_stop_start_record_activity(services):
    services.environments.put("prod", body().to_registration(), ADA)
    assert services.environments.stop("prod", ADA).state is EnvironmentState.STOPPED
    assert services.environments.stop("prod", ADA).state is EnvironmentState.STOPPED
    assert services.environments.start("prod", ADA).state is EnvironmentState.RUNNING
    entries, _ = services.activity.page("prod", limit=10, continuation=None)
    assert [entry.action for entry in entries] == [Action.START, Action.STOP, Action.REGISTER]
    assert all(entry.actor_id == "ada" for entry in entries)


def test_unknown_environment_is_not_found(services):
    with pytest.raises(NotFound):
        services.environments.stop("nope", ADA)


def test_list_is_sorted_by_namespace_then_id(services):
    services.environments.put("b-env", body(namespace="zeta").to_registration(), ADA)
    services.environments.put("c-env", body(namespace="alpha").to_registration(), ADA)
    services.environments.put("a-env", body(namespace="zeta").to_registration(), ADA)
    assert [env.id for env in services.environments.list()] == ["c-env", "a-env", "b-env"]


def test_password_setting_and_entra_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        body(database={"host": "h", "database": "d", "user": "u", "passwordSetting": "X", "entraAuth": True})


def test_activity_pages_newest_first(services):
    services.environments.put("prod", body().to_registration(), ADA)
    for _ in range(4):
        services.environments.stop("prod", ADA)
        services.environments.start("prod", ADA)
    seen = []
    token = None
    while True:
        entries, token = services.activity.page("prod", limit=3, continuation=token)
        seen.extend(entries)
        if token is None:
            break
    assert len(seen) == 9
    times = [entry.occurred_on for entry in seen]
    assert times == sorted(times, reverse=True)
