"""appbackups nights [DATE] [--watch]: a night of scheduled backups, per environment you can see."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from cli.api.shapes import NightView
from cli.client import ApiError
from cli.render.nights import counts_line, night_view
from cli.session import current, emit, err, fail, out, show
from cli.watch import poll


def settled(night: NightView) -> bool:
    """Nothing of the night is waiting or running any more."""
    return night["counts"]["waiting"] == 0 and night["counts"]["running"] == 0


def nights(
    night: Annotated[
        str | None, typer.Argument(help="The night, as its date (YYYY-MM-DD, UTC); tonight's when left out.")
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Look again every few seconds until nothing is waiting or running.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between looks with --watch.")] = 5.0,
) -> None:
    """A night of scheduled backups: per environment not due, waiting, running, done (its backup) or failed (why)."""
    session = current()
    wanted = night or datetime.now(UTC).date().isoformat()
    try:
        if watch:
            document = poll(
                lambda: session.api.night(wanted),
                done=settled,
                on_update=lambda seen: err.print(counts_line(seen)),
                interval=interval,
                what=f"the night of {wanted}",
            )
        else:
            document = session.api.night(wanted)
    except ApiError as error:
        fail(error)
    if session.as_json:
        emit(document)
    else:
        show(night_view(document, width=out.width))
