"""Cancel on the Backups page, in Chromium: a backup being made, a download being prepared and a restore,
each stopped from the page. The page's host runs no queued work, so each job waits where the test wants
it; a worker host started afterwards carries the cancels out, and the page follows them to the end."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.support.apphost import AppHost, start_app_host
from tests.support.polling import wait_for_status
from tests.support.portal_browser import laptop_page
from tests.support.portal_stack import PortalStack, portal_stack

pytestmark = pytest.mark.e2e

WORK = 60_000


@pytest.fixture(scope="module")
def stack(postgres_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalStack]:
    with portal_stack(tmp_path_factory.mktemp("portal-cancel"), postgres_admin_dsn, queues=False) as running:
        yield running


@pytest.fixture
def worker(stack: PortalStack, tmp_path) -> Iterator:
    started: list[AppHost] = []

    def start() -> AppHost:
        host = start_app_host(stack.azurite.connection_string, tmp_path / f"worker-{len(started)}.log")
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


@pytest.fixture
def page(stack: PortalStack) -> Iterator[Page]:
    with laptop_page() as opened:
        yield opened


def finished_backup(api: str) -> dict:
    created = requests.post(f"{api}/environments/demo-production/backups", json={"comment": "to restore"}, timeout=30)
    document = wait_for_status(api.removesuffix("/api") + created.headers["Location"], "Processing", timeout=60)
    assert document["status"] == "Finished", document
    return document


def test_cancel_a_backup_a_download_and_a_restore_from_the_page(page: Page, stack: PortalStack, worker) -> None:
    first = worker()
    finished_backup(stack.api)
    first.stop()

    page.goto(f"{stack.page_url}#environment=demo-production")
    expect(page.get_by_label("Environment", exact=True)).to_have_value("demo-production", timeout=10_000)
    table = page.get_by_role("table", name=re.compile("^Backups of"))

    # A backup being made: More Options → Cancel.
    page.get_by_label("Comment (optional)").fill("never mind")
    page.get_by_role("button", name="Create Backup").click()
    pending = table.get_by_role("row").filter(has_text="never mind")
    expect(pending.get_by_text("Processing", exact=True)).to_be_visible()
    pending.get_by_role("button", name="More Options").click()
    page.get_by_role("menuitem", name="Cancel", exact=True).click()
    expect(page.get_by_text(re.compile("^Cancelling the manual backup of Production"))).to_be_visible()

    # A download being prepared: Cancel Download.
    kept = table.get_by_role("row").filter(has_text="to restore")
    kept.get_by_role("button", name="More Options").click()
    page.get_by_role("menuitem", name="Download", exact=True).click()
    download = page.get_by_role("dialog", name="Download backup")
    download.get_by_role("button", name="Start").click()
    expect(download.get_by_text("Preparing the archive…")).to_be_visible()
    download.get_by_role("button", name="Cancel Download").click()
    expect(download.get_by_role("button", name="Cancel Download")).to_be_disabled()
    download.get_by_role("button", name="Close").click()

    # A restore into acceptance (Stopped): Cancel Restore in its progress.
    kept.get_by_role("button", name="More Options").click()
    page.get_by_role("menuitem", name="Restore", exact=True).click()
    restore = page.get_by_role("dialog", name="Restore backup")
    restore.get_by_label("Destination environment").select_option("demo-acceptance")
    restore.get_by_role("button", name="Restore Backup").click()
    expect(restore.get_by_role("heading", name="Restore into Acceptance")).to_be_visible()
    restore.get_by_role("button", name="Cancel Restore").click()
    expect(restore.get_by_role("status")).to_contain_text("Cancelling")
    expect(restore.get_by_role("button", name="Cancel Restore")).to_be_hidden()

    worker()  # now the work runs, and undoes itself
    expect(restore.get_by_role("status")).to_contain_text("CANCELLED", timeout=WORK)
    expect(restore.get_by_role("status")).to_contain_text("Acceptance is as it was before")
    restore.get_by_role("button", name="Close").click()
    expect(pending.get_by_text("Cancelled", exact=True)).to_be_visible(timeout=WORK)
    expect(pending).to_contain_text("Cancelled by Local developer")
    kept.get_by_role("button", name="More Options").click()
    page.get_by_role("menuitem", name="Download", exact=True).click()
    expect(download.get_by_text("Preparing the archive was cancelled")).to_be_visible(timeout=WORK)
    download.get_by_role("button", name="Close").click()
    activity = page.get_by_role("table", name="Activity of Production")
    # The backup, the download, and the restore of one of its backups into acceptance ("Into demo-acceptance").
    expect(activity.get_by_role("row").filter(has_text="CANCELLED")).to_have_count(3, timeout=WORK)
    page.get_by_label("Environment", exact=True).select_option("demo-acceptance")
    expect(page.get_by_role("table", name="Activity of Acceptance").get_by_role("row").nth(1)).to_contain_text(
        "CANCELLED"
    )


def test_a_backup_being_made_shows_its_files_bytes_and_time_left(page: Page, stack: PortalStack) -> None:
    """The page renders a Processing backup's fileProgress (as the API gives it while the dump step runs):
    files and bytes done of total and the time left, in the list and in Details. The backup is a real one
    left queued (this stack runs no work); its list entry gets the progress of a 20,000-file backup."""
    created = requests.post(f"{stack.api}/environments/demo-production/backups", json={"comment": "big"}, timeout=30)
    backup_id = created.json()["id"]
    progress = {"done": 1200, "total": 20000, "bytesDone": 3_250_586, "bytesTotal": None, "percent": 6.0,
                "etaSeconds": 80.4}  # fmt: skip

    def with_progress(route) -> None:  # type: ignore[no-untyped-def]
        # The list, and the backup itself (Details shows the list's entry, then reads it afresh).
        response = route.fetch()
        document = response.json()
        for item in document.get("items", [document]):
            if item["id"] == backup_id:
                item["fileProgress"] = progress
        route.fulfill(response=response, json=document)

    page.route(re.compile(rf".*/api/environments/demo-production/backups(/{backup_id})?(\?.*)?$"), with_progress)
    page.goto(f"{stack.page_url}#environment=demo-production")
    table = page.get_by_role("table", name=re.compile("^Backups of"))
    row = table.get_by_role("row").filter(has_text="big")
    expected = "1,200 of 20,000 files · 3.1 MB · about 1 min 20 s left"
    expect(row.get_by_text(re.compile(re.escape(expected)))).to_be_visible(timeout=15_000)
    row.get_by_role("button", name="More Options").click()
    page.get_by_role("menuitem", name="Details").click()
    expect(page.get_by_role("dialog").get_by_text(expected)).to_be_visible()
    # Details keeps reading a Processing backup: let a read in flight end quietly as the page closes.
    page.unroute_all(behavior="ignoreErrors")


def test_a_restore_loading_its_database_shows_tables_and_bytes(page: Page, stack: PortalStack, worker) -> None:
    """The page renders a restore's switch step as the API gives it while pg_restore loads: its file
    documents, then the load's tables done of total and dump bytes. The restore is a real one left queued
    (this stack runs no work); its status gets the progress of a 121 MB dump's load."""
    first = worker()
    finished_backup(stack.api)
    first.stop()
    loading = {"status": "Running", "attempts": 1, "message": "", "progress": {
        "done": 10, "total": 40, "bytesDone": 41_943_040, "bytesTotal": 126_877_696, "percent": 25.0,
        "detail": "loading the database", "tablesDone": 3, "tablesTotal": 12,
        "files": {"done": 10, "total": 40, "bytesDone": 100, "bytesTotal": 400, "percent": 25.0, "etaSeconds": 30},
    }}  # fmt: skip

    def with_progress(route) -> None:  # type: ignore[no-untyped-def]
        response = route.fetch()
        document = response.json()
        for step in document.get("steps", []):
            if step["name"] == "switch":
                step.update(loading)
        route.fulfill(response=response, json=document)

    page.route(re.compile(r".*/api/restores/[^/?]+$"), with_progress)
    page.goto(f"{stack.page_url}#environment=demo-production")
    table = page.get_by_role("table", name=re.compile("^Backups of"))
    kept = table.get_by_role("row").filter(has_text="to restore").first
    kept.get_by_role("button", name="More Options").click()
    page.get_by_role("menuitem", name="Restore", exact=True).click()
    restore = page.get_by_role("dialog", name="Restore backup")
    restore.get_by_label("Destination environment").select_option("demo-acceptance")
    restore.get_by_role("button", name="Restore Backup").click()
    expect(restore.get_by_role("heading", name="Restore into Acceptance")).to_be_visible()
    # The files once (the step's own done/total is the same count), then the load.
    files = "10 of 40 files · 100 bytes of 400 bytes · about 30 s left"
    expected = f"{files} · tables 3 of 12 · 40 MB of 121 MB · loading the database"
    expect(restore.get_by_text(expected)).to_be_visible(timeout=15_000)
    page.unroute_all(behavior="ignoreErrors")
