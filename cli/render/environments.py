"""Environments: the list (compact, or --wide), one environment in detail, and its recovery window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import RenderableType
from rich.text import Text

from cli.api.shapes import EnvironmentView, RecoveryWindowView
from cli.render.tables import details, fixed, left_for, rest, table
from cli.render.units import duration, moment, when


def environments_table(items: Sequence[EnvironmentView], *, wide: bool = False, width: int = 80) -> RenderableType:
    if wide:
        listing = table(fixed("environment"), "namespace", "name", "state", "model", "deployment package", "app")
        for item in items:
            listing.add_row(
                item["id"],
                item["namespace"],
                Text(item["displayName"]),
                item["state"],
                item["modelVersion"] or "-",
                item["deploymentPackage"] or "-",
                item["appName"],
            )
        return listing
    cells = [
        ["environment", *(item["id"] for item in items)],
        ["state", *(item["state"] for item in items)],
        ["model", *(item["modelVersion"] or "-" for item in items)],
    ]
    listing = table(*(fixed(column[0]) for column in cells), rest("name", left_for(width, cells)))
    for row, item in enumerate(items, start=1):
        listing.add_row(*(column[row] for column in cells), Text(item["displayName"]))
    return listing


def environment_view(item: EnvironmentView, now: datetime | None = None) -> RenderableType:
    schedule = item.get("schedule")
    last = schedule["lastScheduledBackup"] if schedule else None
    database = item["database"]
    state = item["state"] + (f" (restore {item['activeRestoreId']})" if item["activeRestoreId"] else "")
    rows: list[tuple[str, Any]] = [
        ("environment", item["id"]),
        ("namespace", item["namespace"]),
        ("name", Text(item["displayName"])),
        ("app", item["appName"]),
        ("state", state),
    ]
    if item.get("deregisteredOn"):
        rows.append(("deregistered", moment(item.get("deregisteredOn"), now)))
    port = database.get("port")
    rows += [
        ("model version", item["modelVersion"] or "-"),
        ("deployment package", item["deploymentPackage"] or "-"),
        ("database", f"{database['user']}@{database['host']}{f':{port}' if port else ''}/{database['database']}"),
        ("file documents", f"{item['files']['container']}/{item['files'].get('prefix') or ''}"),
        ("next scheduled backup", moment(schedule["nextRun"], now) if schedule else "-"),
    ]
    if last:
        tier = f" {last['tier']}" if last["tier"] else ""
        rows.append(("last scheduled backup", f"night of {last['night']}:{tier} {last['status'] or 'none'}"))
    drill = item.get("lastDrill")
    if drill:
        seconds = drill["restoreSeconds"]
        loaded = f"; loaded in {duration(seconds)}" if seconds is not None else ""
        rows.append(("last restore drill", f"{drill['status']} {moment(drill['verifiedOn'], now)}{loaded}"))
    return details(rows)


def window_view(window: RecoveryWindowView, now: datetime | None = None) -> RenderableType:
    """'earliest 2026-12-01 10:00 CET (09:00 UTC), 6 days ago', the latest, the recovery point, each gap."""
    point = window["recoveryPointSeconds"]
    rows: list[tuple[str, Any]] = [
        ("environment", window["environmentId"]),
        ("server", window["server"]),
        ("earliest", moment(window["earliest"], now) if window["earliest"] else "- (no base backup yet)"),
        ("latest", moment(window["latest"], now)),
        ("recovery point", f"{duration(point)} behind the clock" if point is not None else "-"),
    ]
    for gap in window["gaps"]:
        rows.append(("gap", Text(f"{when(gap['start'])} … {when(gap['end'])}: {gap['reason']}")))
    return details(rows)
