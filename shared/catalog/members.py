"""The members table: per namespace, one row per principal with its permissions."""

from __future__ import annotations

from collections.abc import Iterator

from shared.adapters.tables import Row, RowTable
from shared.catalog.codec import Codec, from_iso, to_iso
from shared.catalog.repository import Repository
from shared.domain.access import Membership, Permission


def _to_row(membership: Membership) -> Row:
    return Row(
        membership.namespace,
        membership.principal_id,
        {
            "PrincipalName": membership.principal_name,
            "Permissions": ",".join(sorted(p.value for p in membership.permissions)),
            "GrantedBy": membership.granted_by,
            "GrantedOn": to_iso(membership.granted_on),
        },
        membership.etag,
    )


def _from_row(row: Row) -> Membership:
    return Membership(
        namespace=row.partition_key,
        principal_id=row.row_key,
        principal_name=row.get("PrincipalName") or row.row_key,
        permissions=frozenset(Permission(p) for p in (row.get("Permissions") or "").split(",") if p),
        granted_by=row.get("GrantedBy") or "",
        granted_on=from_iso(row["GrantedOn"]),  # type: ignore[arg-type]
        etag=row.etag,
    )


_CODEC = Codec(_to_row, _from_row, lambda membership: f"The membership of {membership.principal_id}")


class MemberCatalog:
    def __init__(self, table: RowTable) -> None:
        self._members = Repository(table, _CODEC)

    def find(self, namespace: str, principal_id: str) -> Membership | None:
        return self._members.load(namespace, principal_id)

    def of_namespace(self, namespace: str) -> list[Membership]:
        return list(self._members.all(namespace))

    def of_principal(self, principal_id: str) -> Iterator[Membership]:
        return (membership for membership in self._members.all() if membership.principal_id == principal_id)

    def put(self, membership: Membership) -> Membership:
        return self._members.put(membership)

    def remove(self, namespace: str, principal_id: str) -> None:
        self._members.remove(namespace, principal_id)
