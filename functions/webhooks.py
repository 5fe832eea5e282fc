"""Routes: the webhooks of a namespace (register, read, list, remove) and their recent deliveries.
NamespaceAdmin only; the secret is write-only."""

from __future__ import annotations

import re

from functions.http import CONTINUATION, ApiBlueprint, ApiRequest, Reply, RouteSpec, in_namespace, page_size
from shared.bootstrap import services
from shared.contracts.common import Page
from shared.contracts.webhooks import WEBHOOK_ID_PATTERN, DeliveryView, WebhookBody, WebhookView
from shared.domain.access import Permission
from shared.domain.events import Webhook
from shared.errors import InvalidRequest

bp = ApiBlueprint()

TAG = "Events"
ADMIN = in_namespace(Permission.NAMESPACE_ADMIN)

_ID = re.compile(WEBHOOK_ID_PATTERN)
DELIVERIES_LIMIT = page_size(default=50, maximum=200)


def _webhook_id(request: ApiRequest) -> str:
    value = request.route("webhookId")
    if not _ID.match(value):
        raise InvalidRequest(
            f"{value!r} is not a webhook id (lower-case letters, digits and hyphens, 1 to 63 characters).",
            code="invalid_webhook_id",
        )
    return value


def _view(webhook: Webhook) -> WebhookView:
    return WebhookView.of(webhook, services().webhooks.last_delivery(webhook))


@bp.api(
    "namespaces/{ns}/webhooks",
    "GET",
    RouteSpec(
        "The namespace's webhooks, each with its latest delivery", ADMIN, response_model=Page[WebhookView], tag=TAG
    ),
)
def list_webhooks(request: ApiRequest) -> Reply:
    webhooks = services().webhooks.of_namespace(request.namespace())
    return Reply(200, Page[WebhookView](items=[_view(webhook) for webhook in webhooks]))


@bp.api(
    "namespaces/{ns}/webhooks/{webhookId}",
    "PUT",
    RouteSpec(
        "Register a webhook (201) or replace it (200): the URL, the events it receives, its signing secret",
        ADMIN,
        request_model=WebhookBody,
        response_model=WebhookView,
        also_success=(201,),
        tag=TAG,
    ),
)
def put_webhook(request: ApiRequest) -> Reply:
    namespace, webhook_id = request.namespace(), _webhook_id(request)
    body = request.body(WebhookBody)
    webhook, created = services().webhooks.put(
        namespace,
        webhook_id,
        url=body.url,
        events=tuple(body.events),
        secret=body.secret,
        description=body.description,
        caller=request.caller,
    )
    return Reply(201 if created else 200, _view(webhook))


@bp.api(
    "namespaces/{ns}/webhooks/{webhookId}",
    "GET",
    RouteSpec("One webhook (whether its secret is set, never the secret)", ADMIN, response_model=WebhookView, tag=TAG),
)
def get_webhook(request: ApiRequest) -> Reply:
    return Reply(200, _view(services().webhooks.get(request.namespace(), _webhook_id(request))))


@bp.api(
    "namespaces/{ns}/webhooks/{webhookId}",
    "DELETE",
    RouteSpec("Remove a webhook; its pending deliveries are dropped", ADMIN, success_status=204, tag=TAG),
)
def delete_webhook(request: ApiRequest) -> Reply:
    services().webhooks.remove(request.namespace(), _webhook_id(request))
    return Reply(204)


@bp.api(
    "namespaces/{ns}/webhooks/{webhookId}/deliveries",
    "GET",
    RouteSpec(
        "A webhook's recent deliveries, newest event first, each with its attempts (status code, time, error)",
        ADMIN,
        response_model=Page[DeliveryView],
        query=(DELIVERIES_LIMIT, CONTINUATION),
        tag=TAG,
    ),
)
def list_deliveries(request: ApiRequest) -> Reply:
    deliveries, token = services().webhooks.deliveries(
        request.namespace(),
        _webhook_id(request),
        limit=request.query_int(DELIVERIES_LIMIT),
        continuation=request.continuation_token(),
    )
    return Reply(200, Page[DeliveryView](items=[DeliveryView.of(d) for d in deliveries], continuation_token=token))
