"""Backups: the list (compact, or --wide), one backup in detail, a drill's checks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from cli.api.shapes import BackupView, VerificationView
from cli.ids import short_ids
from cli.render.operations import files_text
from cli.render.tables import details, fixed, left_for, rest, table
from cli.render.units import duration, moment, parse, size, stamp

VERIFIED = {"Passed": "verified", "Failed": "drill failed", "Running": "verifying"}


def verified(item: BackupView) -> str:
    verification = item.get("verification")
    return VERIFIED.get(verification["status"], verification["status"]) if verification else "-"


def state(item: BackupView) -> str:
    """One word for the compact list: Processing, Failed, Cancelled; a Finished backup says what its last
    restore drill found (verified, drill failed, verifying), else whether it has warnings."""
    if item["status"] != "Finished":
        return item["status"]
    if item.get("verification"):
        return verified(item)
    return "warnings" if item.get("warnings") else "Finished"


def total_size(item: BackupView) -> int | None:
    parts = [item["dumpSize"], item["filesSize"]]
    return None if all(part is None for part in parts) else sum(part or 0 for part in parts)


def backups_table(
    items: Sequence[BackupView], *, wide: bool = False, width: int = 80, now: datetime | None = None
) -> RenderableType:
    if wide:
        return _wide(items, now)
    short = short_ids([item["id"] for item in items])
    cells = [
        ["id", *(short[item["id"]] for item in items)],
        ["created", *(stamp(item["createdOn"], now) for item in items)],
        ["tier", *(item["tier"] for item in items)],
        ["status", *(state(item) for item in items)],
        ["size", *(size(total_size(item)) for item in items)],
    ]
    listing = table(
        *(fixed(column[0]) for column in cells),
        rest("comment", left_for(width, cells)),
        caption=None if items else "no backups",
    )
    for row, item in enumerate(items, start=1):
        listing.add_row(*(column[row] for column in cells), Text(item["comment"]))
    return listing


def _wide(items: Sequence[BackupView], now: datetime | None) -> RenderableType:
    listing = table(
        fixed("id"), "status", "verified", "tier", fixed("created"), fixed("kept until"), "database", "files", "comment"
    )
    for item in items:
        files = f"{item['fileCount']:,} ({size(item['filesSize'])})" if item["fileCount"] is not None else "-"
        listing.add_row(
            item["id"],
            item["status"] + (" (warnings)" if item.get("warnings") else ""),
            verified(item),
            item["tier"],
            stamp(item["createdOn"], now),
            stamp(item["retainedUntil"], now) + (" pinned" if item["keepUntil"] else ""),
            size(item["dumpSize"]),
            files,
            Text(item["comment"]),
        )
    return listing


def postgres_version(number: int | None) -> str:
    if number is None:
        return ""
    major, minor = divmod(number, 10000)
    return f"PostgreSQL {major}.{minor}" if major >= 10 else f"PostgreSQL {number}"


def backup_view(item: BackupView, now: datetime | None = None) -> RenderableType:
    """Every detail of one backup: sizes in KiB/MiB/GiB, times local (and UTC) with how long ago."""
    status = item["status"] + (f": {item['statusMessage']}" if item["statusMessage"] else "")
    rows: list[tuple[str, Any]] = [
        ("backup", item["id"]),
        ("environment", f"{item['environmentId']} (namespace {item['namespace']})"),
        ("status", Text(status)),
    ]
    if item["status"] == "Processing":
        doing = ", ".join(part for part in (item["progress"], files_text(item.get("fileProgress"))) if part)
        tries = f" (try {item['attempts']})" if item["attempts"] > 1 else ""
        rows.append(("progress", Text(f"{doing or '-'}{tries}")))
        if item.get("stalledSince"):
            rows.append(("stalled since", moment(item.get("stalledSince"), now)))
    rows.append(("tier", item["tier"]))
    if item.get("pointInTime"):
        rows.append(("as of", moment(item.get("pointInTime"), now)))
    rows += [
        ("comment", Text(item["comment"] or "-")),
        ("created", f"{moment(item['createdOn'], now)}, by {item['createdBy']['name']}"),
    ]
    if item["finishedOn"]:
        rows.append(("finished", moment(item["finishedOn"], now)))
        rows.append(("took", duration((parse(item["finishedOn"]) - parse(item["createdOn"])).total_seconds())))
    rows.append(("kept until", moment(item["retainedUntil"], now) + ("; pinned" if item["keepUntil"] else "")))
    rows.append(("database", _database(item)))
    if item.get("tableCount") is not None:
        rows.append(("tables", f"{item.get('tableCount'):,}, with {item.get('rowCount') or 0:,} rows"))
    if item["dumpSha256"]:
        rows.append(("dump sha256", item["dumpSha256"]))
    rows.append(("files", _files(item)))
    if item["filesCopied"] is not None and item["fileCount"]:
        rows.append(("files stored", f"{item['filesCopied']:,} by this backup; the rest shared with others"))
    reconciled = item.get("filesReconciled")
    if reconciled is not None:
        how = "listed in full now" if reconciled else "new file documents read; the rest from the previous backup"
        last = item.get("filesReconciledOn")
        rows.append(("file list", how + (f" (file store last listed {moment(last, now)})" if last else "")))
    sizes = item.get("downloadSizes")
    if sizes:
        rows.append(("downloads", _downloads(sizes)))
    if item["modelVersion"] or item["deploymentPackage"]:
        rows.append(("model", f"{item['modelVersion'] or '-'}, deployment package {item['deploymentPackage'] or '-'}"))
    missing = item.get("missingFiles")
    if missing:
        first = ", ".join(missing["uuids"][:3]) + (", …" if missing["count"] > 3 else "")
        rows.append(("missing files", f"{missing['count']:,} without content ({first})"))
    if item["inUseBy"]:
        rows.append(("in use by", ", ".join(item["inUseBy"])))
    verification = item.get("verification")
    rows.append(("verification", _verification(verification, now) if verification else "never drilled"))
    if verification and verification["restoreSeconds"] is not None:
        rows.append(("drill load", f"the dump loaded in {duration(verification['restoreSeconds'])}"))
    parts: list[Any] = [details(rows)]
    if verification and verification["checks"]:
        parts += ["", checks_table(verification)]
    for warning in item.get("warnings") or []:
        parts.append(Text(f"warning: {warning}"))
    return Group(*parts)


def _database(item: BackupView) -> str:
    text = f"dump {size(item['dumpSize'])}"
    if item["databaseSize"] is not None:
        text += f" ({size(item['databaseSize'])} on the server)"
    version = postgres_version(item.get("serverVersion"))
    return f"{text}, {version}" if version else text


def _files(item: BackupView) -> str:
    if item["fileCount"] is None:
        return "-"
    return f"{item['fileCount']:,} documents, {size(item['filesSize'])}"


def _downloads(sizes: dict[str, Any]) -> str:
    names = {"files_and_database": "full archive", "database_only": "database only"}
    return "; ".join(
        f"{names.get(kind, kind)} {'about ' if each['estimate'] else ''}{size(each['size'])}"
        for kind, each in sizes.items()
    )


def _verification(verification: VerificationView, now: datetime | None) -> str:
    if verification["verifiedOn"]:
        return f"{verification['status']} {moment(verification['verifiedOn'], now)}"
    return f"{verification['status']}, started {moment(verification['startedOn'], now)}"


def checks_table(verification: VerificationView) -> RenderableType:
    checks = table(fixed("check"), fixed("status"), "detail")
    for check in verification["checks"]:
        checks.add_row(check["name"], check["status"], Text(check["detail"]))
    return checks
