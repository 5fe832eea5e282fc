"""A namespace's webhooks and a webhook's deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import RenderableType
from rich.text import Text

from cli.api.shapes import DeliveryView, WebhookView
from cli.ids import short_ids
from cli.render.tables import fixed, table
from cli.render.units import stamp


def last_delivery(delivery: DeliveryView | None) -> str:
    if not delivery:
        return "-"
    attempts = delivery["attempts"]
    attempt = attempts[-1] if attempts else None
    if attempt is None:
        return delivery["status"]
    code = attempt["statusCode"]
    return f"{delivery['status']} ({code if code is not None else attempt.get('error') or 'no answer'})"


def webhooks_table(items: Sequence[WebhookView]) -> RenderableType:
    listing = table(fixed("id"), "url", "events", fixed("secret"), "last delivery")
    for item in items:
        listing.add_row(
            item["id"],
            Text(item["url"], overflow="fold"),
            ", ".join(item["events"]),
            "set" if item["secretSet"] else "-",
            Text(last_delivery(item.get("lastDelivery"))),
        )
    return listing


def deliveries_table(items: Sequence[DeliveryView]) -> RenderableType:
    """The event ids by their ends (as the receivers log them whole: grep finds them)."""
    listing = table(fixed("event"), "type", fixed("status"), fixed("tries"), "last attempt", fixed("next"))
    short = short_ids([item["eventId"] for item in items])
    for item in items:
        attempts = item["attempts"]
        last = attempts[-1] if attempts else None
        if last is None:
            shown = "-"
        else:
            code = last["statusCode"]
            shown = f"{stamp(last['on'])} {code if code is not None else ''} {last.get('error') or ''}".strip()
        listing.add_row(
            short[item["eventId"]],
            item["eventType"].removeprefix("appbackups."),
            item["status"],
            str(len(attempts)),
            Text(shown),
            stamp(item.get("nextAttemptOn")),
        )
    return listing
