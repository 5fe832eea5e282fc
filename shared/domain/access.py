"""Permissions, per namespace."""

from __future__ import annotations

from dataclasses import dataclass
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
