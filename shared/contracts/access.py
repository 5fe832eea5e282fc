"""Request and response bodies of the membership routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from shared.contracts.common import ApiModel
from shared.domain.access import Caller, Membership, Permission

PrincipalId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@-]+$")]


class MembershipBody(ApiModel):
    permissions: list[Permission] = Field(min_length=1, description="NamespaceAdmin implies the others.")
    name: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] = Field(
        default="", description="A display name for the member."
    )


class MembershipView(ApiModel):
    namespace: str
    principal_id: str
    principal_name: str
    permissions: list[Permission]
    granted_by: str
    granted_on: datetime

    @classmethod
    def of(cls, membership: Membership) -> MembershipView:
        return cls(
            namespace=membership.namespace,
            principal_id=membership.principal_id,
            principal_name=membership.principal_name,
            permissions=sorted(membership.permissions),
            granted_by=membership.granted_by,
            granted_on=membership.granted_on,
        )


class CallerView(ApiModel):
    id: str
    name: str
    identity_provider: str
    global_admin: bool
    memberships: list[MembershipView]

    @classmethod
    def of(cls, caller: Caller) -> CallerView:
        return cls(
            id=caller.principal.id,
            name=caller.principal.name,
            identity_provider=caller.principal.identity_provider,
            global_admin=caller.global_admin,
            memberships=[MembershipView.of(m) for m in caller.memberships],
        )
