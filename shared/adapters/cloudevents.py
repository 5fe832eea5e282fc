"""CloudEvents 1.0, JSON event format, through the CloudEvents SDK: the one encoding of an event, sent
as it is to webhooks (structured content mode) and to Event Grid (its CloudEvents input schema)."""

from __future__ import annotations

import json
from typing import Any

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from shared.domain.events import Event, EventType

CONTENT_TYPE = JSONFormat.CONTENT_TYPE  # application/cloudevents+json
_FORMAT = JSONFormat()


def encode(event: Event) -> str:
    """The event as a CloudEvents JSON document."""
    cloud_event = CloudEvent(
        {
            "id": event.id,
            "source": event.source,
            "type": event.type.value,
            "subject": event.subject,
            "time": event.time,
            "datacontenttype": "application/json",
            "appbackupsnamespace": event.namespace,
        },
        event.data,
    )
    return _FORMAT.write(cloud_event).decode("utf-8")


def decode(document: str | bytes) -> Event:
    """Read an event back (the fan-out reads what the job published); raises ValueError if it is not one."""
    try:
        cloud_event = _FORMAT.read(None, document)
        attributes = cloud_event.get_attributes()
        data: Any = cloud_event.get_data()
        return Event(
            id=str(attributes["id"]),
            type=EventType(attributes["type"]),
            source=str(attributes["source"]),
            subject=str(attributes.get("subject") or ""),
            time=attributes["time"],
            namespace=str(attributes.get("appbackupsnamespace") or ""),
            data=data if isinstance(data, dict) else {},
        )
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"not an appbackups CloudEvent: {error}") from error
    except Exception as error:  # the SDK's validation errors
        if type(error).__module__.startswith("cloudevents"):
            raise ValueError(f"not a valid CloudEvent: {error}") from error
        raise
