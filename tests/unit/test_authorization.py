"""The access use case (shared/access/authorization.py) on the in-memory twins: who may do what a route
declares, and that a caller with no permission in a namespace cannot tell what exists in it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from shared.access.authorization import Access, Asked, Authorization, Scope
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import Permission, Principal
from shared.errors import AppError, Conflict, Forbidden, NotFound
from tests.support.memory import memory_services

MANAGE, STOP, ADMIN = Permission.MANAGE_BACKUPS, Permission.STOP_APPS, Permission.NAMESPACE_ADMIN
ROOT = Principal("root-oid", "Root")  # a global admin
OWNER = Principal("owner-oid", "Owner")  # namespace admin of ns
MANAGER = Principal("manager-oid", "Manager")  # ManageAppsBackups in ns
OPERATOR = Principal("operator-oid", "Operator")  # ManageAppsBackups and StopApps in ns
OUTSIDER = Principal("outsider-oid", "Outsider")  # everything in other, nothing in ns
NOBODY = Principal("nobody-oid", "Nobody")

BACKUPS = Access(Scope.ENVIRONMENT, (MANAGE,))
STOPPING = Access(Scope.ENVIRONMENT, (STOP,))
RESTORE = Access(Scope.RESTORE, (MANAGE, STOP))
REGISTRATION = Access(Scope.REGISTRATION, (ADMIN,))
MEMBERS = Access(Scope.NAMESPACE, (ADMIN,))


def registration(namespace: str, state: str = "Stopped") -> dict:
    return {
        "namespace": namespace,
        "appName": "app",
        "displayName": "An environment",
        "state": state,
        "database": {"host": "h", "database": "d", "user": "u"},
        "files": {"container": "files"},
    }


@dataclass(frozen=True)
class World:
    authorization: Authorization
    restore_id: str
    drill_id: str


@pytest.fixture
def world():
    services = memory_services(global_admins=frozenset({ROOT.id}))
    for environment, namespace in (("prod", "ns"), ("acc", "ns"), ("old", "ns"), ("elsewhere", "other")):
        body = EnvironmentBody.model_validate(registration(namespace))
        services.environments.put(environment, body.to_registration(), ROOT)
    services.environments.deregister("old", ROOT, services.backup_catalog)
    grants = {OWNER: ("ns", {ADMIN}), MANAGER: ("ns", {MANAGE}), OPERATOR: ("ns", {MANAGE, STOP})}
    grants[OUTSIDER] = ("other", {ADMIN})
    for principal, (namespace, permissions) in grants.items():
        services.access.grant(namespace, principal.id, frozenset(permissions), principal.name, ROOT)
    backup = services.backups.record("prod", ROOT)
    backup = services.backup_catalog.save(backup.finished(backup.created_on, dump_size=1, dump_sha256="0" * 64))
    restore = services.restores.request("prod", backup.id, "acc", ROOT)
    drill = services.drills.request("prod", backup.id, ROOT)
    return World(services.authorization, restore.id, drill.id)


def refused(world: World, access: Access, **asked) -> AppError | None:
    """The error the use case raises for the request, or None when it lets it through."""
    try:
        world.authorization.authorize(access, Asked(**asked))
    except AppError as error:
        return error
    return None


def code(error: AppError | None) -> str | None:
    return None if error is None else error.code


def test_public_and_signed_in_routes_let_anyone_through_and_read_nothing(world):
    for scope in (Scope.PUBLIC, Scope.SIGNED_IN):
        assert refused(world, Access(scope), caller=NOBODY, environment_id="no-such-environment") is None


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        (ROOT, None),
        (OWNER, None),
        (MANAGER, None),
        (OPERATOR, None),
        (OUTSIDER, "environment_not_found"),
        (NOBODY, "environment_not_found"),
    ],
)
def test_an_environment_route_needs_the_permission_in_the_environments_namespace(world, caller, expected):
    assert code(refused(world, BACKUPS, caller=caller, environment_id="prod")) == expected


def test_a_missing_permission_is_a_403_naming_it_and_no_permission_at_all_a_404(world):
    error = refused(world, STOPPING, caller=MANAGER, environment_id="prod", method="POST")
    assert isinstance(error, Forbidden)
    assert error.extensions["missing"] == ["StopApps"]
    assert "namespace 'ns'" in error.detail
    hidden = refused(world, STOPPING, caller=OUTSIDER, environment_id="prod", method="POST")
    assert isinstance(hidden, NotFound)
    assert hidden.detail == "There is no environment 'prod'."


def test_an_environment_nobody_may_see_looks_like_one_that_does_not_exist(world):
    for caller in (OUTSIDER, ROOT):
        missing = refused(world, BACKUPS, caller=caller, environment_id="nowhere")
        assert (code(missing), missing.detail) == ("environment_not_found", "There is no environment 'nowhere'.")
    unseen = refused(world, BACKUPS, caller=OUTSIDER, environment_id="prod")
    assert (code(unseen), unseen.detail) == ("environment_not_found", "There is no environment 'prod'.")


@pytest.mark.parametrize(
    ("method", "route", "expected"),
    [
        ("GET", "environments/{env}", None),
        ("GET", "environments/{env}/activity", None),
        ("PATCH", "environments/{env}/backups/{id}", None),
        ("DELETE", "environments/{env}/backups/{id}", None),
        ("POST", "environments/{env}/backups/{id}/download", None),
        ("POST", "environments/{env}/backups", "environment_deregistered"),
        ("POST", "environments/{env}/uploads", "environment_deregistered"),
        ("POST", "environments/{env}/stop", "environment_deregistered"),
    ],
)
def test_a_deregistered_environment_answers_reads_and_work_on_its_backups_only(world, method, route, expected):
    error = refused(world, BACKUPS, caller=OWNER, environment_id="old", method=method, route=route)
    assert code(error) == expected
    if error is not None:
        assert isinstance(error, Conflict)
        assert f"{method} /api/{route} is not possible" in error.detail


def test_a_deregistered_environment_is_still_hidden_from_outsiders(world):
    error = refused(world, BACKUPS, caller=OUTSIDER, environment_id="old", method="POST", route="environments/{env}")
    assert code(error) == "environment_not_found"


def test_a_restore_needs_both_permissions_in_the_source_and_the_target(world):
    def restore(caller, target):
        return refused(
            world,
            RESTORE,
            caller=caller,
            environment_id="prod",
            method="POST",
            route="environments/{env}/backups/{id}/restore",
            target_environment_id=target,
        )

    assert restore(OPERATOR, "acc") is None
    assert restore(OPERATOR, None) is None  # no valid target named: the handler answers for the body
    assert code(restore(MANAGER, "acc")) == "permission_missing"
    hidden = restore(OPERATOR, "elsewhere")
    assert (code(hidden), hidden.detail) == ("environment_not_found", "There is no environment 'elsewhere'.")
    assert code(restore(OPERATOR, "nowhere")) == "environment_not_found"
    deregistered = restore(OPERATOR, "old")
    assert code(deregistered) == "environment_deregistered"
    assert "restoring into it is not possible" in deregistered.detail
    assert code(restore(ROOT, "elsewhere")) is None


def test_registering_needs_namespace_admin_of_the_body_or_the_existing_environment(world):
    def register(caller, environment, namespace):
        return refused(world, REGISTRATION, caller=caller, environment_id=environment, namespace=namespace)

    assert register(OWNER, "new-one", "ns") is None
    assert code(register(MANAGER, "new-one", "ns")) == "permission_missing"
    foreign = register(OWNER, "new-one", "other")
    assert (code(foreign), foreign.detail) == ("namespace_not_found", "There is no namespace 'other' you administer.")
    assert register(ROOT, "new-one", "brand-new") is None
    assert register(NOBODY, "new-one", None) is None  # no namespace in the body: the handler answers 400
    # an existing environment is guarded by its own namespace, whatever the body says
    assert register(OWNER, "prod", "other") is None
    moved = register(OUTSIDER, "prod", "other")
    assert (code(moved), moved.detail) == ("environment_not_found", "There is no environment 'prod'.")


def test_a_namespace_route_needs_the_permission_in_that_namespace(world):
    assert refused(world, MEMBERS, caller=OWNER, namespace="ns") is None
    assert refused(world, MEMBERS, caller=ROOT, namespace="anything") is None
    assert code(refused(world, MEMBERS, caller=OPERATOR, namespace="ns")) == "permission_missing"
    hidden = refused(world, MEMBERS, caller=OUTSIDER, namespace="ns")
    assert (code(hidden), hidden.detail) == ("namespace_not_found", "There is no namespace 'ns' you can see.")


def test_a_restore_or_drill_is_seen_only_by_whom_may_see_its_namespace(world):
    restore, drill = world.restore_id, world.drill_id
    status = Access(Scope.RESTORE_STATUS, (MANAGE,))
    cancel = Access(Scope.RESTORE_STATUS, (MANAGE, STOP))
    drills = Access(Scope.DRILL_STATUS, (MANAGE,))
    assert refused(world, status, caller=MANAGER, operation_id=restore) is None
    assert code(refused(world, cancel, caller=MANAGER, operation_id=restore)) == "permission_missing"
    assert refused(world, cancel, caller=OPERATOR, operation_id=restore) is None
    assert refused(world, drills, caller=MANAGER, operation_id=drill) is None
    for caller in (OUTSIDER, NOBODY):
        assert code(refused(world, status, caller=caller, operation_id=restore)) == "restore_not_found"
        assert code(refused(world, drills, caller=caller, operation_id=drill)) == "drill_not_found"
    # an id of the other kind, or of nothing, is not found, even for a global admin
    assert code(refused(world, status, caller=ROOT, operation_id=drill)) == "restore_not_found"
    wrong = refused(world, drills, caller=ROOT, operation_id=restore)
    assert (code(wrong), wrong.detail) == ("drill_not_found", f"There is no restore drill {restore!r}.")
    assert code(refused(world, status, caller=ROOT, operation_id="nothing")) == "restore_not_found"
