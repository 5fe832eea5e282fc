"""A night of scheduled backups: its counts, and per environment where its backup stands."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from cli.api.shapes import NightView
from cli.render.tables import fixed, left_for, rest, table

STATE_STYLE = {"done": "green", "failed": "red", "running": "cyan", "waiting": "yellow", "notDue": "dim"}
STATE_WORD = {"notDue": "not due"}


def counts_line(night: NightView) -> str:
    counts = night["counts"]
    return (
        f"night of {night['night']}: {counts['done']} done, {counts['failed']} failed, {counts['running']} running, "
        f"{counts['waiting']} waiting, {counts['notDue']} not due ({counts['total']} environments)"
    )


def night_view(night: NightView, *, width: int = 80) -> RenderableType:
    items = night["environments"]
    cells = [
        ["environment", *(item["environmentId"] for item in items)],
        ["namespace", *(item["namespace"] for item in items)],
        ["state", *(STATE_WORD.get(item["state"], item["state"]) for item in items)],
        ["backup", *((item.get("snapshotId") or "-") for item in items)],
    ]
    listing = table(*(fixed(column[0]) for column in cells), rest("detail", left_for(width, cells)))
    for row, item in enumerate(items, start=1):
        state = Text(cells[2][row], style=STATE_STYLE.get(item["state"], ""))
        listing.add_row(cells[0][row], cells[1][row], state, cells[3][row], Text(item.get("detail") or ""))
    return Group(Text(counts_line(night)), listing)
