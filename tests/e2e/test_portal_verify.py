"""Verified backups on the Backups page, in Chromium: the Verify action, the badge it leads to, the checks
in Details, and the pre-flight plan in the Restore dialog before the user confirms."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.support.polling import wait_for_status
from tests.support.portal_browser import laptop_page
from tests.support.portal_stack import PortalStack, portal_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(postgres_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalStack]:
    with portal_stack(tmp_path_factory.mktemp("portal-verify"), postgres_admin_dsn) as running:
        yield running


@pytest.fixture
def page(stack: PortalStack) -> Iterator[Page]:
    with laptop_page() as opened:
        yield opened


def test_verify_a_backup_see_its_badge_and_checks_and_the_plan_before_a_restore(page: Page, stack: PortalStack) -> None:
    created = requests.post(
        f"{stack.api}/environments/demo-production/backups", json={"comment": "to verify"}, timeout=30
    )
    document = wait_for_status(stack.api.removesuffix("/api") + created.headers["Location"], "Processing", timeout=60)
    assert document["status"] == "Finished", document

    page.goto(f"{stack.page_url}#environment=demo-production")
    table = page.get_by_role("table", name=re.compile("^Backups of"))
    row = table.get_by_role("row").filter(has_text="to verify")
    row.get_by_role("button", name="More Options").click()
    page.get_by_role("menuitem", name="Verify", exact=True).click()
    expect(row.get_by_text("Verified", exact=True)).to_be_visible(timeout=60_000)

    row.get_by_role("button", name="More Options").click()
    page.get_by_role("menuitem", name="Details", exact=True).click()
    details = page.get_by_role("dialog", name=re.compile("Backup details|Details"))
    expect(details.get_by_text("Check: row_counts")).to_be_visible()
    expect(details.get_by_text("Check: checksums")).to_be_visible()
    details.get_by_role("button", name="Close").first.click()

    # The Restore dialog shows the plan before anything is confirmed: acceptance is stopped, the plan passes.
    row.get_by_role("button", name="More Options").click()
    page.get_by_role("menuitem", name="Restore", exact=True).click()
    restore = page.get_by_role("dialog", name="Restore backup")
    restore.get_by_label("Destination environment").select_option("demo-acceptance")
    plan = restore.get_by_role("region", name=re.compile("^The plan"))
    expect(plan.get_by_text(re.compile("^Plan: ready"))).to_be_visible(timeout=20_000)
    expect(plan.locator('[data-check="target_state"]')).to_contain_text("pass")
    expect(plan.locator('[data-check="verification"]')).to_contain_text("Verified by a restore drill")
    expect(plan.get_by_text(re.compile("Estimated time to load the database"))).to_be_visible()
    # Into production, which runs: the plan says the restore would be refused, and why.
    restore.get_by_label("Destination environment").select_option("demo-production")
    expect(plan.get_by_text("Plan: the restore would be refused")).to_be_visible(timeout=20_000)
    expect(plan.locator('[data-check="target_state"]')).to_contain_text("Stop would be needed")
