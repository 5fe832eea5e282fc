"""Restore to a point in time… on the Backups page, in a real browser (Debian's Chromium driven by Playwright)
against the real app in the development host, the browser in Amsterdam's time zone: the action only for an
environment registered with pointInTime; the recovery window, or the API's reason when there is none; the
instant typed in local time with its UTC instant beside it, and pasted in UTC with the local time following;
Check (a dry run's checks) and Restore (the API's refusal in words).

The first test takes the development host's answers as they come: without an archive wired into it, the window
answers 409 (with barman-cloud, a window without a base backup for this server); either way its dry runs give a
plan whose point_in_time check fails and a restore is refused, and the page must say the API's reasons. The
second test shows a window, a plan that passes and a refusal outside the window as the API answers them (its own
response models, served to the page by Playwright)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Locator, Page, Route, expect

from shared.adapters.pointintime import Gap, RecoveryWindow
from shared.contracts.common import Problem
from shared.contracts.operations import PreflightCheckView
from shared.contracts.pointintime import GapView, PointInTimePlanView, RecoveryWindowView
from tests.support.portal_browser import LAPTOP, chromium, chromium_missing
from tests.support.portal_stack import PortalStack, portal_stack

pytestmark = pytest.mark.e2e

QUICK = 10_000
ARCHIVED = "demo-archived"
ZONE = "Europe/Amsterdam"


@pytest.fixture(scope="module")
def stack(postgres_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalStack]:
    """Azurite, the demo seed and the app host, with demo-archived: Production's data, registered with
    point-in-time recovery (demo-production has none)."""
    with portal_stack(tmp_path_factory.mktemp("portal-pit"), postgres_admin_dsn) as running:
        production = requests.get(f"{running.api}/environments/demo-production", timeout=30).json()
        body = {
            "namespace": "demo",
            "appName": "demo-app",
            "displayName": "Archived",
            "state": "Running",
            "database": production["database"],
            "files": production["files"],
            "modelVersion": "1.4.0",
            "pointInTime": {"server": "demo-archived-db", "windowDays": 7},
        }
        registered = requests.put(f"{running.api}/environments/{ARCHIVED}", json=body, timeout=30)
        assert registered.status_code == 201, registered.text
        assert registered.json()["pointInTime"] == {"server": "demo-archived-db", "windowDays": 7}
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    missing = chromium_missing()
    if missing:
        pytest.fail(missing)
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, stack: PortalStack) -> Iterator[Page]:
    context = browser.new_context(viewport=LAPTOP, locale="en-US", timezone_id=ZONE)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert errors == [], f"the page threw: {errors}"


def open_page(page: Page, stack: PortalStack, environment: str) -> None:
    page.goto(f"{stack.page_url}#environment={environment}")
    expect(page.get_by_role("heading", name="Backups", level=1)).to_be_visible()
    expect(page.get_by_label("Environment", exact=True)).to_have_value(environment, timeout=QUICK)


def open_dialog(page: Page) -> Locator:
    page.get_by_role("button", name="Restore to a point in time…").click()
    dialog = page.get_by_role("dialog", name="Restore to a point in time")
    expect(dialog).to_be_visible()
    return dialog


def local_field(dialog: Locator) -> Locator:
    return dialog.get_by_label(f"Local time ({ZONE})")


def utc_field(dialog: Locator) -> Locator:
    return dialog.get_by_label("UTC", exact=True)


def test_the_action_the_refusals_and_local_time_beside_utc(page: Page, stack: PortalStack) -> None:
    # Only an environment registered with pointInTime offers it.
    open_page(page, stack, "demo-production")
    expect(page.get_by_role("button", name="Stop Application")).to_be_visible()
    expect(page.get_by_role("button", name="Restore to a point in time…")).to_have_count(0)
    open_page(page, stack, ARCHIVED)
    dialog = open_dialog(page)
    expect(local_field(dialog)).to_be_focused()

    # The window as this host answers it: refused with the API's reason, or empty (no base backup archived).
    answer = requests.get(f"{stack.api}/environments/{ARCHIVED}/recovery-window", timeout=30)
    window = dialog.get_by_role("region", name="Recovery window")
    if answer.status_code in (409, 503):
        expect(window).to_contain_text(f"The recovery window cannot be read: {answer.json()['detail']}")
    else:
        assert answer.status_code == 200, answer.text
        assert answer.json()["earliest"] is None, "this test's server has no archive: go further once it has one"
        expect(window).to_contain_text(f"Nothing of {ARCHIVED} can be restored to an instant yet")

    # Local time typed: the UTC instant beside it as it is typed (summer: UTC+2, winter: UTC+1).
    local_field(dialog).fill("2026-07-01T12:30:15")
    expect(utc_field(dialog)).to_have_value("2026-07-01T10:30:15Z")
    note = dialog.locator("#pit-instant-note")
    expect(note).to_contain_text("in Europe/Amsterdam is 2026-07-01T10:30:15Z in UTC")
    local_field(dialog).fill("2026-12-07T11:41:05")
    expect(utc_field(dialog)).to_have_value("2026-12-07T10:41:05Z")

    # An instant pasted in UTC: the local time follows; one with an offset is written out in UTC once left.
    utc_field(dialog).fill("2026-12-07T10:41:07Z")
    expect(local_field(dialog)).to_have_value("2026-12-07T11:41:07")
    utc_field(dialog).fill("2026-07-01 08:00:30+01:00")
    expect(local_field(dialog)).to_have_value("2026-07-01T09:00:30")
    utc_field(dialog).blur()
    expect(utc_field(dialog)).to_have_value("2026-07-01T07:00:30Z")

    # Not an instant: said, and neither Check nor Restore goes ahead without one.
    utc_field(dialog).fill("2026-02-30T10:00:00Z")
    expect(utc_field(dialog)).to_have_attribute("aria-invalid", "true")
    expect(note).to_contain_text("is not an instant yet")
    dialog.get_by_role("button", name="Check").click()
    expect(dialog.get_by_text("Enter the instant to restore to: the local time, or an instant in UTC.")).to_be_visible()
    expect(utc_field(dialog)).to_be_focused()

    # Check: the dry run's plan, its point_in_time check failing with the API's reason.
    dry_run = requests.post(
        f"{stack.api}/environments/{ARCHIVED}/restore-to-time",
        json={"pointInTime": "2026-12-07T10:41:00Z", "targetEnvironment": "demo-acceptance", "dryRun": True},
        timeout=30,
    )
    assert dry_run.status_code == 200, dry_run.text
    assert dry_run.json()["outcome"] == "fail"
    reason = next(check["reason"] for check in dry_run.json()["checks"] if check["name"] == "point_in_time")
    utc_field(dialog).fill("2026-12-07T10:41:00Z")
    dialog.get_by_role("button", name="Check").click()
    expect(dialog.get_by_text("Choose the environment to restore into.")).to_be_visible()
    dialog.get_by_label("Destination environment").select_option("demo-acceptance")
    expect(
        dialog.get_by_text(
            "Acceptance is stopped. Its database and file documents will be replaced by those Archived had at the "
            "instant"
        )
    ).to_be_visible()
    plan = dialog.get_by_role("region", name=re.compile("^The plan"))
    expect(plan).to_be_hidden()  # made on Check, not on the choice of a destination
    dialog.get_by_role("button", name="Check").click()
    expect(plan.get_by_role("heading", name="Plan: the restore would be refused")).to_be_visible(timeout=QUICK)
    expect(plan.locator("[data-check=point_in_time]")).to_contain_text(f"point in time: {reason}")
    expect(plan.locator("[data-check=namespace]")).to_contain_text("pass")
    # Another instant: the plan made for the one before goes.
    local_field(dialog).fill("2026-12-07T11:42:00")
    expect(plan).to_be_hidden()

    # Restore: refused (409 without an archive, 422 without a window) with the API's reason; the dialog stays.
    refused = requests.post(
        f"{stack.api}/environments/{ARCHIVED}/restore-to-time",
        json={"pointInTime": "2026-12-07T10:42:00Z", "targetEnvironment": "demo-acceptance"},
        timeout=30,
    )
    assert refused.status_code in (409, 422, 503), refused.text
    dialog.get_by_role("button", name="Restore", exact=True).click()
    expect(dialog.locator("#restore-message")).to_have_text(refused.json()["detail"], timeout=QUICK)
    expect(dialog.get_by_label("Destination environment")).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    # The same environment registered without pointInTime: no longer offered.
    archived = requests.get(f"{stack.api}/environments/{ARCHIVED}", timeout=30).json()
    keys = ("namespace", "appName", "displayName", "state", "database", "files", "modelVersion")
    body = {key: archived[key] for key in keys} | {"pointInTime": None}
    assert requests.put(f"{stack.api}/environments/{ARCHIVED}", json=body, timeout=30).status_code == 200
    page.reload()
    expect(page.get_by_role("button", name="Stop Application")).to_be_visible(timeout=QUICK)
    expect(page.get_by_role("button", name="Restore to a point in time…")).to_have_count(0)
    body["pointInTime"] = {"server": "demo-archived-db", "windowDays": 7}
    assert requests.put(f"{stack.api}/environments/{ARCHIVED}", json=body, timeout=30).status_code == 200


EARLIEST = datetime(2026, 12, 7, 8, 0, 0, tzinfo=UTC)
LATEST = datetime(2026, 12, 7, 11, 59, 30, tzinfo=UTC)
GAP = Gap(datetime(2026, 12, 7, 9, 0, tzinfo=UTC), datetime(2026, 12, 7, 9, 5, tzinfo=UTC), "WAL segment missing")
WINDOW = RecoveryWindow(EARLIEST, LATEST, (GAP,))


def window_answer() -> dict[str, Any]:
    return RecoveryWindowView.of(ARCHIVED, "demo-archived-db", EARLIEST, LATEST, (GAP,), 42.4, LATEST).to_json()


def plan_answer(instant: datetime) -> dict[str, Any]:
    checks = [
        PreflightCheckView(name="point_in_time", status="pass", reason=f"{instant.isoformat()} is inside the window."),
        PreflightCheckView(name="target_state", status="pass", reason="demo-acceptance is Stopped."),
        PreflightCheckView(name="model_version", status="warn", reason="The model at the instant is not recorded."),
    ]
    return PointInTimePlanView(
        outcome="warn",
        point_in_time=instant,
        source_environment_id=ARCHIVED,
        target_environment_id="demo-acceptance",
        stop_needed=False,
        checks=checks,
        earliest=EARLIEST,
        latest=LATEST,
        gaps=[GapView(start=GAP.start, end=GAP.end, reason=GAP.reason)],
        estimated_seconds=12.2,
        estimate_basis="From the last restore drill.",
        warnings=[checks[2].reason],
    ).to_json()


def test_a_window_a_plan_and_an_instant_outside_it(page: Page, stack: PortalStack) -> None:
    """The answers of an archive this host does not have yet, in the API's own models."""
    sent: list[dict[str, Any]] = []

    def recovery_window(route: Route) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(window_answer()))

    def restore_to_time(route: Route) -> None:
        body = route.request.post_data_json
        sent.append(body)
        instant = datetime.fromisoformat(body["pointInTime"])
        if body.get("dryRun"):
            route.fulfill(status=200, content_type="application/json", body=json.dumps(plan_answer(instant)))
            return
        refusal = WINDOW.refusal(instant)
        assert refusal is not None
        problem = Problem(
            title="Unprocessable Content", status=422, detail=f"{ARCHIVED}: {refusal}", code="instant_outside_window"
        )
        route.fulfill(status=422, content_type="application/problem+json", body=json.dumps(problem.to_json()))

    page.route(re.compile(rf".*/api/environments/{ARCHIVED}/recovery-window$"), recovery_window)
    page.route(re.compile(rf".*/api/environments/{ARCHIVED}/restore-to-time$"), restore_to_time)
    open_page(page, stack, ARCHIVED)
    dialog = open_dialog(page)

    # The window in local time (Amsterdam, UTC+1 in December) and in UTC, its gap and the recovery point.
    window = dialog.get_by_role("region", name="Recovery window")
    expect(window).to_contain_text("Dec 7, 2026, 9:00:00 AM (2026-12-07T08:00:00Z)")
    expect(window).to_contain_text("Dec 7, 2026, 12:59:30 PM (2026-12-07T11:59:30Z)")
    expect(window).to_contain_text("(2026-12-07T09:05:00Z): WAL segment missing")
    expect(window).to_contain_text("the latest restorable instant is 42 s behind the clock")
    window.get_by_role("button", name="Use latest").click()
    expect(local_field(dialog)).to_have_value("2026-12-07T12:59:30")
    expect(utc_field(dialog)).to_have_value("2026-12-07T11:59:30Z")

    # In the gap, or after the latest instant: said before the API is asked.
    local_field(dialog).fill("2026-12-07T10:02:00")
    expect(dialog.locator("#pit-instant-note")).to_contain_text("lies in a gap of the window (WAL segment missing)")
    local_field(dialog).fill("2026-12-07T11:30:00")
    expect(dialog.locator("#pit-instant-note")).not_to_contain_text("refused")

    # Check: the plan's checks and the window it was checked against; the instant is sent in UTC.
    dialog.get_by_label("Destination environment").select_option("demo-acceptance")
    dialog.get_by_role("button", name="Check").click()
    plan = dialog.get_by_role("region", name=re.compile("^The plan"))
    expect(plan.get_by_role("heading", name="Plan: ready, with warnings")).to_be_visible(timeout=QUICK)
    expect(plan.locator("[data-check=model_version]")).to_contain_text("The model at the instant is not recorded.")
    expect(plan).to_contain_text("Instant: Dec 7, 2026, 11:30:00 AM (2026-12-07T10:30:00Z).")
    expect(plan).to_contain_text("Checked against the recovery window Dec 7, 2026, 9:00:00 AM")
    expect(plan).to_contain_text("with 1 gap")
    expect(plan).to_contain_text("Estimated time to load the database: about 13 s.")
    assert sent[-1] == {"pointInTime": "2026-12-07T10:30:00Z", "targetEnvironment": "demo-acceptance", "dryRun": True}

    # Restore at an instant after the window: the 422 naming the window, in words.
    utc_field(dialog).fill("2026-12-07T13:00:00Z")
    dialog.get_by_role("button", name="Restore", exact=True).click()
    window_text = "2026-12-07T08:00:00+00:00 … 2026-12-07T11:59:30+00:00"
    expected = f"{ARCHIVED}: 2026-12-07T13:00:00+00:00 is outside the recovery window {window_text}."
    expect(dialog.locator("#restore-message")).to_have_text(expected, timeout=QUICK)
    assert sent[-1] == {"pointInTime": "2026-12-07T13:00:00Z", "targetEnvironment": "demo-acceptance"}
