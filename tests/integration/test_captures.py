"""Captures of file documents against real Azurite and PostgreSQL, run by the timer as the host runs it: the
new ones copied into the content store once, the ones no longer referred to noted, an earlier instant's
file documents given back from the captures."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from devhost.loader import FunctionInfo
from devhost.timers import TimerRunner, timer_request
from shared.bootstrap import install_services
from shared.clock import utc_now
from shared.config import DEFAULT_SCHEDULES
from shared.domain.environments import PointInTime
from tests.support.appdata import create_scratch_app, md5_hex
from tests.support.functions import _FUNCTIONS, http_function
from tests.support.restoring import Harness

pytestmark = pytest.mark.integration

TIMER = "capture_file_documents"


@pytest.fixture
def services(storage_connection_string, storage_services):
    services = Harness(storage_connection_string).services
    install_services(services)
    yield services
    install_services(None)


@pytest.fixture
def app(services, database_factory, postgres_admin_dsn):
    app = create_scratch_app(services, database_factory(), postgres_admin_dsn, documents=3)
    services.environment_catalog.update(
        app.environment_id, lambda environment: replace(environment, point_in_time=PointInTime("pg-scratch"))
    )
    return app


def content_md5s(services, app) -> dict[str, str]:
    """Each capture's uuid and the MD5 of its content object as Azurite holds it."""
    return {
        capture.uuid: md5_hex(services.stores.content.read_bytes(capture.object))
        for capture in services.captures.captures(app.environment_id)
    }


def test_the_development_host_runs_the_timer_every_minute_by_default():
    runner = TimerRunner(FunctionInfo.from_function(_FUNCTIONS[TIMER]), lambda *_: None, environ=DEFAULT_SCHEDULES)
    assert runner.function.schedule == "%APPBACKUPS_CAPTURE_SCHEDULE%"
    half_past = datetime(2026, 12, 7, 10, 41, 30, tzinfo=UTC)
    first = runner.schedule.next_after(half_past)
    assert (first, runner.schedule.next_after(first)) == (
        half_past + timedelta(seconds=30),
        half_past + timedelta(seconds=90),
    )


def test_a_capture_run_copies_the_new_file_documents_once_and_notes_the_gone_ones(services, app):
    app.add_document(has_contents=False)  # not referred to by the backups' query: not captured
    app.add_orphan_blob()  # in the container, not in the database: not captured
    started = utc_now()
    http_function(TIMER)(timer_request(False))
    assert content_md5s(services, app) == app.referenced_files()
    captures = list(services.captures.captures(app.environment_id))
    assert all(started <= capture.first_referred <= utc_now() for capture in captures)
    first_run = services.captures.latest_run(app.environment_id).ran_on
    referred_then = dict(app.referenced_files())

    environment = services.environments.get(app.environment_id)
    again = services.captures.capture(environment)
    assert (again.new, again.copied, again.gone, again.missing) == (0, 0, 0, 0)

    went = sorted(app.files)[0]
    with app.connect() as connection:
        connection.execute('DELETE FROM "system$filedocument" WHERE "__uuid__" = %s', (went,))
    app.files.pop(went)
    added = app.add_document(b"a new document")
    report = services.captures.capture(environment)
    assert (report.new, report.copied, report.gone) == (1, 1, 1)
    by_uuid = {capture.uuid: capture for capture in services.captures.captures(app.environment_id)}
    assert by_uuid[went].gone_on is not None
    assert by_uuid[added].gone_on is None

    missing: list[str] = []
    entries = list(
        services.captures.files_as_of(app.environment_id, first_run, iter(sorted(referred_then)), missing.append)
    )
    assert missing == []
    assert {entry.uuid: md5_hex(services.stores.content.read_bytes(entry.object)) for entry in entries} == referred_then
