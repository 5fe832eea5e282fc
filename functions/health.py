"""Route: the health check (storage and database reachability)."""

from __future__ import annotations

from functions.http import PUBLIC, ApiBlueprint, ApiRequest, Reply, RouteSpec
from shared.bootstrap import services
from shared.contracts.health import HealthView

bp = ApiBlueprint()


@bp.api(
    "health",
    "GET",
    RouteSpec("Storage and database reachability", PUBLIC, response_model=HealthView, tag="Service"),
)
def health(request: ApiRequest) -> Reply:
    report = services().health.check()
    return Reply(503 if report.status == "unhealthy" else 200, HealthView.of(report))
