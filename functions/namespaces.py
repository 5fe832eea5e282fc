"""Routes: who the caller is, and the members of a namespace (grant and revoke permissions)."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from functions.http import CONTINUATION, SIGNED_IN, ApiBlueprint, ApiRequest, Reply, RouteSpec, in_namespace, page_size
from shared.bootstrap import services
from shared.catalog.activity import namespace_log
from shared.contracts.access import CallerView, MembershipBody, MembershipView, PrincipalId
from shared.contracts.activity import ActivityEntryView
from shared.contracts.common import Page
from shared.domain.access import Permission
from shared.domain.activity import Action, Outcome
from shared.errors import InvalidRequest

bp = ApiBlueprint()

TAG = "Access"
ADMIN = in_namespace(Permission.NAMESPACE_ADMIN)
LIMIT = page_size(default=50, maximum=200)


def _principal_id(request: ApiRequest) -> str:
    value = request.route("principalId")
    try:
        return TypeAdapter(PrincipalId).validate_python(value)
    except ValidationError as error:
        raise InvalidRequest(f"{value!r} is not a principal id.", code="invalid_principal_id") from error


@bp.api(
    "me",
    "GET",
    RouteSpec("The caller: identity, global admin or not, memberships", SIGNED_IN, response_model=CallerView, tag=TAG),
)
def get_me(request: ApiRequest) -> Reply:
    return Reply(200, CallerView.of(services().access.caller(request.caller)))


@bp.api(
    "namespaces/{ns}/members",
    "GET",
    RouteSpec("Members of a namespace and their permissions", ADMIN, response_model=Page[MembershipView], tag=TAG),
)
def list_members(request: ApiRequest) -> Reply:
    members = services().access.members(request.namespace())
    return Reply(200, Page[MembershipView](items=[MembershipView.of(m) for m in members]))


@bp.api(
    "namespaces/{ns}/members/{principalId}",
    "PUT",
    RouteSpec(
        "Grant a principal permissions in a namespace (replacing what it had)",
        ADMIN,
        request_model=MembershipBody,
        response_model=MembershipView,
        also_success=(201,),
        tag=TAG,
    ),
)
def put_member(request: ApiRequest) -> Reply:
    namespace, principal_id = request.namespace(), _principal_id(request)
    body = request.body(MembershipBody)
    membership, created = services().access.grant(
        namespace, principal_id, frozenset(body.permissions), body.name, request.caller
    )
    services().activity.record(
        namespace_log(namespace),
        Action.GRANT,
        Outcome.FINISHED,
        request.caller,
        f"{membership.principal_name} ({principal_id}) now has {', '.join(sorted(membership.permissions))}.",
    )
    return Reply(201 if created else 200, MembershipView.of(membership))


@bp.api(
    "namespaces/{ns}/members/{principalId}",
    "DELETE",
    RouteSpec("Revoke a principal's permissions in a namespace", ADMIN, success_status=204, tag=TAG),
)
def delete_member(request: ApiRequest) -> Reply:
    namespace, principal_id = request.namespace(), _principal_id(request)
    removed = services().access.revoke(namespace, principal_id)
    services().activity.record(
        namespace_log(namespace),
        Action.REVOKE,
        Outcome.FINISHED,
        request.caller,
        f"{removed.principal_name} ({principal_id}) no longer has permissions in {namespace}.",
    )
    return Reply(204)


@bp.api(
    "namespaces/{ns}/activity",
    "GET",
    RouteSpec(
        "The namespace's own changes (grants and revocations), newest first",
        ADMIN,
        response_model=Page[ActivityEntryView],
        query=(LIMIT, CONTINUATION),
        tag=TAG,
    ),
)
def namespace_activity(request: ApiRequest) -> Reply:
    entries, token = services().activity.page(
        namespace_log(request.namespace()),
        limit=request.query_int(LIMIT),
        continuation=request.continuation_token(),
    )
    return Reply(
        200, Page[ActivityEntryView](items=[ActivityEntryView.of(e) for e in entries], continuation_token=token)
    )
