"""The members table: per namespace, one row per principal with its permissions."""

from __future__ import annotations

from collections.abc import Iterator

from shared.adapters.tables import Row, RowTable, iterate
from shared.catalog.codec import from_iso, to_iso
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


class MemberCatalog:
    def __init__(self, table: RowTable) -> None:
        self._table = table

    def find(self, namespace: str, principal_id: str) -> Membership | None:
        row = self._table.get(namespace, principal_id)
        return _from_row(row) if row else None

    def of_namespace(self, namespace: str) -> list[Membership]:
        return [_from_row(row) for row in iterate(self._table, namespace)]

    def of_principal(self, principal_id: str) -> Iterator[Membership]:
        return (
            row_membership
            for row_membership in map(_from_row, iterate(self._table))
            if row_membership.principal_id == principal_id
        )

    def put(self, membership: Membership) -> Membership:
        stored = self._table.upsert(_to_row(membership))
        return _from_row(stored)

    def remove(self, namespace: str, principal_id: str) -> None:
        self._table.delete(namespace, principal_id)
