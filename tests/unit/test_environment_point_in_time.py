"""An environment's point-in-time recovery (`pointInTime`), through the routes and the catalog: registered,
read back, changed, turned off, and refused when it is not valid."""

import pytest

from shared.bootstrap import install_services
from shared.domain.environments import PointInTime
from tests.support.functions import call
from tests.support.memory import memory_services

PRODUCTION = {
    "namespace": "demo",
    "appName": "demo-app",
    "displayName": "Production",
    "state": "Running",
    "database": {"host": "127.0.0.1", "database": "prod", "user": "postgres"},
    "files": {"container": "demo-files", "prefix": "prod/"},
}


@pytest.fixture(autouse=True)
def services():
    services = memory_services(development_mode=True)
    install_services(services)
    yield services
    install_services(None)


def put(env: str, body):
    return call("put_environment", "PUT", f"environments/{env}", route={"env": env}, body=body)


def get(env: str):
    return call("get_environment", "GET", f"environments/{env}", route={"env": env})


def test_registered_with_point_in_time_it_is_stored_and_shown(services):
    status, _, document = put("demo-production", {**PRODUCTION, "pointInTime": {"server": "pg-demo-01"}})
    assert status == 201
    assert document["pointInTime"] == {"server": "pg-demo-01", "windowDays": 7}
    assert get("demo-production")[2]["pointInTime"] == {"server": "pg-demo-01", "windowDays": 7}
    stored = services.environment_catalog.get("demo-production")
    assert stored.point_in_time == PointInTime(server="pg-demo-01", window_days=7)


def test_an_edit_changes_the_window_and_one_without_it_turns_it_off(services):
    put("demo-production", {**PRODUCTION, "pointInTime": {"server": "pg-demo-01"}})
    status, _, document = put("demo-production", {**PRODUCTION, "pointInTime": {"server": "pg-2", "windowDays": 14}})
    assert status == 200
    assert document["pointInTime"] == {"server": "pg-2", "windowDays": 14}
    assert services.environment_catalog.get("demo-production").point_in_time == PointInTime("pg-2", 14)
    status, _, document = put("demo-production", PRODUCTION)
    assert status == 200
    assert document["pointInTime"] is None
    assert services.environment_catalog.get("demo-production").point_in_time is None


def test_an_environment_registered_without_it_has_none():
    status, _, document = put("demo-production", PRODUCTION)
    assert status == 201
    assert document["pointInTime"] is None
    assert get("demo-production")[2]["pointInTime"] is None


@pytest.mark.parametrize(
    ("point_in_time", "field"),
    [
        ({"server": "pg", "windowDays": 0}, "pointInTime.windowDays"),
        ({"server": "pg", "windowDays": 36}, "pointInTime.windowDays"),
        ({"server": ""}, "pointInTime.server"),
        ({"server": "pg/../other"}, "pointInTime.server"),
        ({"windowDays": 7}, "pointInTime.server"),
        ({"server": "pg", "colour": "blue"}, "pointInTime.colour"),
    ],
)
def test_a_point_in_time_that_is_not_valid_is_refused_naming_the_field(services, point_in_time, field):
    status, _, document = put("demo-production", {**PRODUCTION, "pointInTime": point_in_time})
    assert status == 400
    assert document["code"] == "validation_failed"
    assert [error["field"] for error in document["errors"]] == [field]
    assert services.environment_catalog.find("demo-production") is None
