"""Who may do what: namespace memberships, global admins, and the checks every route makes."""

from __future__ import annotations

from collections.abc import Iterable

from shared.catalog.members import MemberCatalog
from shared.clock import Clock
from shared.domain.access import ALL_PERMISSIONS, LOCAL_DEVELOPER, Caller, Membership, Permission, Principal, effective
from shared.errors import Forbidden, NotFound, Unprocessable


class AccessService:
    def __init__(
        self, members: MemberCatalog, global_admins: frozenset[str], development_mode: bool, clock: Clock
    ) -> None:
        self._members = members
        self._global_admins = global_admins
        self._development_mode = development_mode
        self._clock = clock

    def is_global_admin(self, principal: Principal) -> bool:
        """Global admins are named by an app setting; in development mode the local developer is one."""
        return principal.id in self._global_admins or (self._development_mode and principal == LOCAL_DEVELOPER)

    def permissions(self, principal: Principal, namespace: str) -> frozenset[Permission]:
        if self.is_global_admin(principal):
            return ALL_PERMISSIONS
        membership = self._members.find(namespace, principal.id)
        return effective(membership.permissions) if membership else frozenset()

    def require(self, principal: Principal, namespace: str, needed: Iterable[Permission], *, hidden: NotFound) -> None:
        """Raise ``hidden`` (a 404) when the caller has no permission at all in the namespace — what it
        asked for is not shown to exist — and Forbidden when it lacks some of ``needed``."""
        have = self.permissions(principal, namespace)
        if not have:
            raise hidden
        missing = [permission.value for permission in needed if permission not in have]
        if missing:
            raise Forbidden(
                f"This needs {' and '.join(missing)} in namespace {namespace!r}; ask a namespace admin.",
                code="permission_missing",
                missing=missing,
            )

    def visible_namespaces(self, principal: Principal) -> set[str] | None:
        """The namespaces the caller has any permission in; None for all (a global admin)."""
        if self.is_global_admin(principal):
            return None
        return {
            membership.namespace for membership in self._members.of_principal(principal.id) if membership.permissions
        }

    def caller(self, principal: Principal) -> Caller:
        return Caller(principal, self.is_global_admin(principal), tuple(self._members.of_principal(principal.id)))

    def members(self, namespace: str) -> list[Membership]:
        return self._members.of_namespace(namespace)

    def grant(
        self, namespace: str, principal_id: str, permissions: frozenset[Permission], name: str, actor: Principal
    ) -> tuple[Membership, bool]:
        if not permissions:
            raise Unprocessable(
                "Grant at least one permission; to take all away, remove the member.", code="no_permissions"
            )
        existing = self._members.find(namespace, principal_id)
        membership = self._members.put(
            Membership(
                namespace=namespace,
                principal_id=principal_id,
                principal_name=name or (existing.principal_name if existing else principal_id),
                permissions=permissions,
                granted_by=actor.id,
                granted_on=self._clock(),
            )
        )
        return membership, existing is None

    def revoke(self, namespace: str, principal_id: str) -> Membership:
        existing = self._members.find(namespace, principal_id)
        if existing is None:
            raise NotFound(f"{principal_id!r} is not a member of namespace {namespace!r}.", code="member_not_found")
        self._members.remove(namespace, principal_id)
        return existing
