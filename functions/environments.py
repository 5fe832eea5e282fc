"""Routes: environments (register, read, list, stop, start, deregister) and their activity log."""

from __future__ import annotations

from functions.http import (
    CONTINUATION,
    REGISTRATION,
    SIGNED_IN,
    ApiBlueprint,
    ApiRequest,
    FlagQuery,
    Reply,
    RouteSpec,
    in_environment,
    page_size,
)
from shared.bootstrap import services
from shared.contracts.activity import ActivityEntryView
from shared.contracts.common import Page
from shared.contracts.environments import EnvironmentBody, EnvironmentView, ScheduleView
from shared.contracts.pointintime import RecoveryWindowView
from shared.domain.access import Permission

bp = ApiBlueprint()

TAG = "Environments"

DEREGISTERED = FlagQuery(name="deregistered", description="Include deregistered ones.")
ACTIVITY_LIMIT = page_size(default=50, maximum=200)


@bp.api(
    "environments",
    "GET",
    RouteSpec(
        "List environments (with deregistered=true, also the deregistered ones whose backups stay)",
        SIGNED_IN,
        response_model=Page[EnvironmentView],
        query=(DEREGISTERED,),
        tag=TAG,
    ),
)
def list_environments(request: ApiRequest) -> Reply:
    visible = services().access.visible_namespaces(request.caller)
    deregistered = request.query_flag(DEREGISTERED)
    environments = [
        env
        for env in services().environments.list(deregistered=deregistered)
        if visible is None or env.namespace in visible
    ]
    return Reply(200, Page[EnvironmentView](items=[EnvironmentView.of(env) for env in environments]))


@bp.api(
    "environments/{env}",
    "GET",
    RouteSpec("Get an environment", in_environment(), response_model=EnvironmentView, tag=TAG),
)
def get_environment(request: ApiRequest) -> Reply:
    environment = services().environments.get(request.environment_id())
    schedule = ScheduleView.of(services().scheduler.state(environment.id), services().settings.nightly_schedule)
    return Reply(200, EnvironmentView.of(environment, schedule), {"ETag": environment.etag})


@bp.api(
    "environments/{env}",
    "PUT",
    RouteSpec(
        "Register (201) or update (200) an environment",
        REGISTRATION,
        request_model=EnvironmentBody,
        response_model=EnvironmentView,
        also_success=(201,),
        tag=TAG,
    ),
)
def put_environment(request: ApiRequest) -> Reply:
    environment_id = request.environment_id()
    body = request.body(EnvironmentBody)
    environment, created = services().environments.put(
        environment_id, body.to_registration(), request.caller, request.header("If-Match")
    )
    headers = {"ETag": environment.etag}
    if created:
        headers["Location"] = f"/api/environments/{environment.id}"
    return Reply(201 if created else 200, EnvironmentView.of(environment), headers)


@bp.api(
    "environments/{env}",
    "DELETE",
    RouteSpec(
        "Deregister an environment whose app is gone (409 while work runs on it); its backups stay until they "
        "expire, and its activity log stays",
        REGISTRATION,
        response_model=EnvironmentView,
        tag=TAG,
    ),
)
def deregister_environment(request: ApiRequest) -> Reply:
    environment = services().environments.deregister(
        request.environment_id(), request.caller, services().backup_catalog
    )
    return Reply(200, EnvironmentView.of(environment), {"ETag": environment.etag})


@bp.api(
    "environments/{env}/stop",
    "POST",
    RouteSpec("Stop an environment", in_environment(Permission.STOP_APPS), response_model=EnvironmentView, tag=TAG),
)
def stop_environment(request: ApiRequest) -> Reply:
    environment = services().environments.stop(request.environment_id(), request.caller)
    return Reply(200, EnvironmentView.of(environment), {"ETag": environment.etag})


@bp.api(
    "environments/{env}/start",
    "POST",
    RouteSpec("Start an environment", in_environment(Permission.STOP_APPS), response_model=EnvironmentView, tag=TAG),
)
def start_environment(request: ApiRequest) -> Reply:
    environment = services().environments.start(request.environment_id(), request.caller)
    return Reply(200, EnvironmentView.of(environment), {"ETag": environment.etag})


@bp.api(
    "environments/{env}/activity",
    "GET",
    RouteSpec(
        "Activity log, newest first",
        in_environment(),
        response_model=Page[ActivityEntryView],
        query=(ACTIVITY_LIMIT, CONTINUATION),
        tag=TAG,
    ),
)
def list_activity(request: ApiRequest) -> Reply:
    environment = services().environments.get(request.environment_id())
    entries, token = services().activity.page(
        environment.id,
        limit=request.query_int(ACTIVITY_LIMIT),
        continuation=request.continuation_token(),
    )
    return Reply(
        200, Page[ActivityEntryView](items=[ActivityEntryView.of(e) for e in entries], continuation_token=token)
    )


@bp.api(
    "environments/{env}/recovery-window",
    "GET",
    RouteSpec(
        "The instants of the environment's past that can be backed up and restored now, and its recovery point "
        "(409 without point-in-time recovery)",
        in_environment(Permission.MANAGE_BACKUPS),
        response_model=RecoveryWindowView,
        tag=TAG,
    ),
)
def get_recovery_window(request: ApiRequest) -> Reply:
    found = services().past.window(request.environment_id())
    window = found.window
    view = RecoveryWindowView.of(
        found.environment_id,
        found.server,
        window.earliest,
        window.latest,
        window.gaps,
        found.recovery_point_seconds,
        found.read_on,
    )
    return Reply(200, view)
