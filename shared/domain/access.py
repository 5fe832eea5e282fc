"""Permissions, per namespace."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Permission(StrEnum):
    MANAGE_BACKUPS = "ManageAppsBackups"  # create, list, view, edit, delete, download, upload backups
    STOP_APPS = "StopApps"  # stop and start environments; with the former, restore
    NAMESPACE_ADMIN = "NamespaceAdmin"  # register environments, grant and revoke; implies the others


ALL_PERMISSIONS = frozenset(Permission)


def effective(granted: frozenset[Permission]) -> frozenset[Permission]:
    """What a grant allows: a namespace admin may do everything in the namespace."""
    return ALL_PERMISSIONS if Permission.NAMESPACE_ADMIN in granted else granted


@dataclass(frozen=True)
class Membership:
    namespace: str
    principal_id: str
    principal_name: str
    permissions: frozenset[Permission]
    granted_by: str
    granted_on: datetime
    etag: str = ""


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    identity_provider: str = "aad"
    roles: frozenset[str] = field(default_factory=frozenset)


LOCAL_DEVELOPER = Principal(id="local-developer", name="Local developer", identity_provider="development")
SYSTEM = Principal(id="system", name="appbackups", identity_provider="system")
ANONYMOUS = Principal(id="anonymous", name="Anonymous", identity_provider="none")
SCHEDULER = Principal(id="scheduler", name="appbackups scheduler", identity_provider="system")


@dataclass(frozen=True)
class Caller:
    principal: Principal
    global_admin: bool
    memberships: tuple[Membership, ...]
