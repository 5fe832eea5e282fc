"""Tables as kubectl and az print them: no borders, two spaces between columns, one line per row."""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Column, Table

GAP = 2


def table(*columns: str | Column, caption: str | None = None) -> Table:
    return Table(
        *columns,
        box=None,
        pad_edge=False,
        padding=(0, GAP // 2),
        header_style="bold",
        caption=caption,
        caption_justify="left",
    )


def fixed(header: str) -> Column:
    """A column that never wraps nor shrinks (ids, times, sizes)."""
    return Column(header, no_wrap=True)


def rest(header: str, width: int) -> Column:
    """The last column: what is left of ``width``, cut with an ellipsis."""
    return Column(header, no_wrap=True, overflow="ellipsis", max_width=max(width, len(header)))


def left_for(width: int, columns: list[list[str]]) -> int:
    """What is left of ``width`` for one more column after ``columns`` (each its header and cells)."""
    used = sum(max(len(cell) for cell in column) for column in columns)
    return width - used - GAP * len(columns)


def details(rows: list[tuple[str, RenderableType]]) -> Table:
    """A detail view: names in a column of their own, values beside them."""
    grid = Table.grid(padding=(0, GAP))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in rows:
        grid.add_row(name, value)
    return grid
