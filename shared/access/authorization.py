"""Who may call a route: the access a route declares, and the one use case that enforces it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.access.service import AccessService
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.operations import OperationCatalog
from shared.domain.access import Permission, Principal
from shared.errors import NotFound


class Scope(StrEnum):
    PUBLIC = "public"  # no function key, no caller
    SIGNED_IN = "signed-in"  # any caller; the handler shows only what the caller may see
    ENVIRONMENT = "environment"  # permissions in the namespace of the {env} in the route
    REGISTRATION = "registration"  # namespace admin of the environment's namespace (or the body's, for a new one)
    NAMESPACE = "namespace"  # permissions in the {ns} of the route
    RESTORE = "restore"  # permissions in the source's and the target's namespace
    RESTORE_STATUS = "restore-status"  # permissions in the restore's namespace
    DRILL_STATUS = "drill-status"  # permissions in the drill's namespace


@dataclass(frozen=True)
class Access:
    """Who may call a route: declared with the route, enforced in one place (``Authorization``)."""

    scope: Scope
    permissions: tuple[Permission, ...] = ()

    def describe(self) -> str:
        needed = " and ".join(permission.value for permission in self.permissions)
        return {
            Scope.PUBLIC: "Public.",
            Scope.SIGNED_IN: "Any signed-in caller; the answer holds only what the caller may see.",
            Scope.ENVIRONMENT: f"{needed} in the environment's namespace.",
            Scope.REGISTRATION: "NamespaceAdmin in the environment's namespace.",
            Scope.NAMESPACE: f"{needed} in the namespace.",
            Scope.RESTORE: f"{needed} in the namespace of the backup and of the target environment (the same one).",
            Scope.RESTORE_STATUS: f"{needed} in the restore's namespace.",
            Scope.DRILL_STATUS: f"{needed} in the restore drill's namespace.",
        }[self.scope]


@dataclass(frozen=True, kw_only=True)
class Asked:
    """What a request names, as its trigger read it from the route and body (only what its scope needs)."""

    caller: Principal
    method: str = "GET"
    route: str = ""  # as registered, e.g. environments/{env}/backups/{id}
    namespace: str | None = None  # NAMESPACE: the route's; REGISTRATION: the body's, for a new environment
    environment_id: str = ""  # ENVIRONMENT, REGISTRATION, RESTORE
    operation_id: str = ""  # RESTORE_STATUS, DRILL_STATUS
    target_environment_id: str | None = None  # RESTORE: the body's, when it is an environment id


# What a deregistered environment still answers: every read (the environment, its activity, its backups)
# and what a caller does with a backup that stays — edit, delete, download, restore into another
# environment. Everything else (a new backup, an upload, stop, start) is a 409 naming the deregistration.
_BACKUP_ROUTES = "environments/{env}/backups/{id}"


def allowed_when_deregistered(method: str, route: str) -> bool:
    return method.upper() == "GET" or route.startswith(_BACKUP_ROUTES)


def _environment_hidden(environment_id: str) -> NotFound:
    return NotFound(f"There is no environment {environment_id!r}.", code="environment_not_found")


class Authorization:
    """Enforces a route's declared access. Where the caller has no permission at all in the namespace,
    the answer is 404, as if the environment (or restore) did not exist: existence does not leak."""

    def __init__(self, access: AccessService, environments: EnvironmentCatalog, operations: OperationCatalog) -> None:
        self._access = access
        self._environments = environments
        self._operations = operations

    def authorize(self, access: Access, asked: Asked) -> None:
        scope = access.scope
        if scope in (Scope.PUBLIC, Scope.SIGNED_IN):
            return
        if scope is Scope.NAMESPACE:
            self._namespace(access, asked)
        elif scope in (Scope.RESTORE_STATUS, Scope.DRILL_STATUS):
            self._operation(access, asked)
        elif scope is Scope.REGISTRATION:
            self._registration(access, asked)
        else:
            self._environment(access, asked)

    def _namespace(self, access: Access, asked: Asked) -> None:
        namespace = str(asked.namespace)
        hidden = NotFound(f"There is no namespace {namespace!r} you can see.", code="namespace_not_found")
        self._access.require(asked.caller, namespace, access.permissions, hidden=hidden)

    def _operation(self, access: Access, asked: Asked) -> None:
        restore = access.scope is Scope.RESTORE_STATUS
        noun, kind = ("restore", "restore") if restore else ("restore drill", "verify")
        code = "restore_not_found" if restore else "drill_not_found"
        hidden = NotFound(f"There is no {noun} {asked.operation_id!r}.", code=code)
        operation = self._operations.find(asked.operation_id)
        if operation is None or operation.kind != kind:
            raise hidden
        self._access.require(asked.caller, operation.namespace, access.permissions, hidden=hidden)

    def _registration(self, access: Access, asked: Asked) -> None:
        environment = self._environments.find(asked.environment_id)
        namespace = environment.namespace if environment else asked.namespace
        if namespace is None:
            return  # an invalid body: the handler answers 400 with the reasons
        hidden = NotFound(f"There is no namespace {namespace!r} you administer.", code="namespace_not_found")
        if environment:
            hidden = _environment_hidden(asked.environment_id)
        self._access.require(asked.caller, namespace, access.permissions, hidden=hidden)

    def _environment(self, access: Access, asked: Asked) -> None:
        environment_id = asked.environment_id
        environment = self._environments.find(environment_id)
        if environment is None:
            raise _environment_hidden(environment_id)
        hidden = _environment_hidden(environment_id)
        self._access.require(asked.caller, environment.namespace, access.permissions, hidden=hidden)
        if not allowed_when_deregistered(asked.method, asked.route):
            environment.ensure_registered(f"{asked.method.upper()} /api/{asked.route}")
        target_id = asked.target_environment_id
        if access.scope is Scope.RESTORE and target_id:
            target = self._environments.find(target_id)
            if target is None:
                raise _environment_hidden(target_id)
            self._access.require(
                asked.caller, target.namespace, access.permissions, hidden=_environment_hidden(target_id)
            )
            target.ensure_registered("restoring into it")
