"""The Backups page in a real browser (Debian's Chromium driven by Playwright) against the real app in the
development host, with its own Azurite, PostgreSQL databases and the demo namespace: create → Finished,
details, download, upload of that archive, restore into acceptance with its stop prompt, pin, delete; the
keyboard, the refusals and the API's errors in words. Locators are accessible ones (roles, labels)."""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.portal_browser import LAPTOP, chromium, chromium_missing
from tests.support.portal_stack import PortalStack, portal_stack

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
# The README's screenshot is refreshed only on request, so that a test run leaves the checkout as it was:
#   APPBACKUPS_UPDATE_SCREENSHOT=1 .venv/bin/python -m pytest tests/e2e/test_portal.py
README_SCREENSHOT = REPO_ROOT / "docs" / "backups-page.png"
WORK = 60_000  # ms: a backup, a download, an upload or a restore of the demo data takes a few seconds
QUICK = 10_000
# Uploads bigger than this go up as blocks (Put Block + Put Block List): small here, so the demo archive does.
UPLOAD_BLOCK_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def stack(postgres_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalStack]:
    """Azurite, the demo seed in fresh databases and the app host, for this module alone (the demo ids are fixed)."""
    with portal_stack(tmp_path_factory.mktemp("portal"), postgres_admin_dsn) as running:
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
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True, locale="en-US", timezone_id="UTC")
    context.add_init_script(f"window.APPBACKUPS_UPLOAD_BLOCK_BYTES = {UPLOAD_BLOCK_BYTES};")
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


def backup_row(page: Page, text: str) -> Locator:
    return page.get_by_role("table", name=re.compile("^Backups of")).get_by_role("row").filter(has_text=text)


def more_options(page: Page, row: Locator, item: str) -> None:
    row.get_by_role("button", name="More Options").click()
    page.get_by_role("menuitem", name=item).click()


def detail(dialog: Locator, name: str) -> Locator:
    """The value (<dd>) of a term (<dt>) of a description list."""
    return (
        dialog.get_by_role("term")
        .filter(has_text=re.compile(f"^{re.escape(name)}$"))
        .locator("xpath=following-sibling::dd[1]")
    )


def create_backup(page: Page, comment: str) -> Locator:
    page.get_by_label("Comment (optional)").fill(comment)
    page.get_by_role("button", name="Create Backup").click()
    row = backup_row(page, comment)
    # The list shows it Processing at once, then follows it to Finished without a reload.
    expect(row.get_by_text("Processing", exact=True)).to_be_visible()
    expect(row.get_by_text("Finished", exact=True)).to_be_visible(timeout=WORK)
    expect(page.get_by_text(re.compile(r"^The backup of \w+ is Finished \(10 file documents\)\.$"))).to_be_visible()
    return row


def test_backup_download_upload_restore_and_delete(page: Page, stack: PortalStack, tmp_path: Path) -> None:
    open_page(page, stack, "demo-production")
    expect(page.get_by_text("Signed in as Local developer")).to_be_visible()

    # Create Backup: the Status column follows it to Finished by itself.
    row = create_backup(page, "before the release")

    # Details
    more_options(page, row, "Details")
    details = page.get_by_role("dialog", name="Backup details")
    expect(details).to_be_visible()
    for name, value in {
        "Status": "Finished",
        "Deployment package": "demo-app_1.4.0.42.mda",
        "Model version": "1.4.0",
        "Comment": "before the release",
        "Tier": "Manual",
        "File documents": "10 files",
        "Created by": "Local developer",
    }.items():
        expect(detail(details, name)).to_have_text(value)
    expect(details.get_by_text(re.compile(r"^[0-9a-f-]{36}$"))).to_be_visible()  # the backup id
    details.get_by_role("button", name="Close").click()
    expect(details).to_be_hidden()
    expect(row.get_by_role("button", name="More Options")).to_be_focused()  # focus came back

    # Download: Start → preparing → Download and Show URL
    more_options(page, row, "Download")
    download = page.get_by_role("dialog", name="Download backup")
    expect(download.get_by_text("No download of this kind has been prepared yet")).to_be_visible()
    size_note = download.get_by_text(re.compile("^The archive will be"))
    expect(size_note).to_have_text(re.compile(r"^The archive will be about [0-9.]+ [KMG]?B \(an estimate\)\.$"))
    with_files = size_note.inner_text()
    download.get_by_label(re.compile("Database only")).check()
    expect(size_note).not_to_have_text(with_files)  # the dump alone: smaller
    expect(size_note).to_have_text(re.compile(r"^The archive will be (about )?[0-9.]+ [KM]?B( \(an estimate\))?\.$"))
    download.get_by_label(re.compile("Database and file documents")).check()
    download.get_by_role("button", name="Start").click()
    link = download.get_by_role("link", name="Download")
    expect(link).to_be_visible(timeout=WORK)
    download.get_by_role("button", name="Show URL").click()
    url_field = download.get_by_label("Download URL")
    expect(url_field).to_have_value(re.compile(rf"^http://127\.0\.0\.1:{stack.azurite.blob_port}/.+\.tar\.gz\?.*sig="))
    assert requests.get(url_field.input_value(), timeout=30).content[:2] == b"\x1f\x8b"
    with page.expect_download() as downloading:
        link.click()
    archive = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(archive)
    assert re.fullmatch(r"demo-production-.+\.tar\.gz", archive.name), archive.name
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert {".metadata", "db/db.backup"} <= set(names)
    assert sum(name.startswith("tree/") for name in names) == 10
    download.get_by_role("button", name="Close").click()

    # Upload Backup: that archive goes to storage in blocks with a progress bar, then becomes a backup item.
    page.get_by_role("button", name="Upload Backup").click()
    upload = page.get_by_role("dialog", name="Upload backup")
    upload.get_by_label("Backup archive").set_input_files(archive)
    upload.get_by_role("button", name="Upload", exact=True).click()
    expect(upload.get_by_role("status")).to_contain_text("Added: a new uploaded backup of Production", timeout=WORK)
    expect(upload.get_by_role("status")).to_contain_text("10 file documents")
    upload.get_by_role("button", name="Close", exact=True).click()
    uploaded = backup_row(page, "Uploaded").filter(has_text="Finished")
    expect(uploaded).to_have_count(1, timeout=QUICK)

    # A file that is no archive goes up in one Put Blob and is refused with the reason.
    not_an_archive = tmp_path / "notes.tar.gz"
    not_an_archive.write_bytes(b"these are notes, not a backup\n" * 10)
    page.get_by_role("button", name="Upload Backup").click()
    upload.get_by_label("Backup archive").set_input_files(not_an_archive)
    upload.get_by_role("button", name="Upload", exact=True).click()
    expect(upload.get_by_role("status")).to_contain_text("The archive was refused:", timeout=WORK)
    expect(upload.get_by_role("status")).to_contain_text("neither a Full Snapshot archive")
    page.keyboard.press("Escape")
    expect(backup_row(page, "Failed").first).to_be_visible()

    # Restore into acceptance: start it first, so that the restore has to offer Stop Application.
    page.get_by_label("Environment", exact=True).select_option("demo-acceptance")
    page.get_by_role("button", name="Start Application").click()
    expect(page.get_by_text("Acceptance is Running.")).to_be_visible()
    page.get_by_label("Environment", exact=True).select_option("demo-production")
    more_options(page, backup_row(page, "before the release"), "Restore")
    restore = page.get_by_role("dialog", name="Restore backup")
    restore.get_by_label("Destination environment").select_option("demo-acceptance")
    expect(restore.get_by_text("Acceptance is running. Stop the application before restoring")).to_be_visible()
    expect(restore.get_by_text("made with model version 1.4.0; Acceptance runs 1.5.0")).to_be_visible()
    expect(restore.get_by_role("button", name="Restore Backup")).to_be_disabled()
    restore.get_by_role("button", name="Stop Application").click()
    expect(restore.get_by_text("Acceptance is Stopped. You can restore the backup now.")).to_be_visible()
    restore.get_by_role("button", name="Restore Backup").click()
    expect(restore.get_by_role("heading", name="Restore into Acceptance")).to_be_visible()
    expect(restore.get_by_role("status")).to_contain_text("FINISHED", timeout=WORK)
    steps = restore.get_by_role("list", name="Steps of the restore").get_by_role("listitem")
    expect(steps).to_have_count(4)
    for index in range(4):
        expect(steps.nth(index)).to_contain_text("Finished")
    expect(restore.get_by_text(re.compile("deploy the same model \\(1\\.4\\.0\\) to demo-acceptance"))).to_be_visible()
    restore.get_by_role("button", name="Show Acceptance").click()
    expect(page.get_by_label("Environment", exact=True)).to_have_value("demo-acceptance")
    activity = page.get_by_role("table", name="Activity of Acceptance")
    latest = activity.get_by_role("row").nth(1)
    expect(latest).to_contain_text("Restore")
    expect(latest).to_contain_text("FINISHED")
    expect(latest).to_contain_text("Restored backup")
    expect(backup_row(page, "Pre-restore")).to_have_count(1)

    # Pin: keep the backup until a date.
    page.get_by_label("Environment", exact=True).select_option("demo-production")
    row = backup_row(page, "before the release")
    more_options(page, row, "Pin")
    pin = page.get_by_role("dialog", name="Pin backup")
    keep_until = datetime.now(UTC).date() + timedelta(days=60)
    pin.get_by_label("Keep until").fill(keep_until.isoformat())
    pin.get_by_role("button", name="Pin", exact=True).click()
    expect(page.get_by_text(re.compile("^Pinned the manual backup of Production"))).to_be_visible()
    expect(row).to_contain_text("pinned")
    expect(row).to_contain_text(f"{keep_until:%b} {keep_until.day}, {keep_until.year}")

    # Delete, after confirmation: the uploaded copy.
    more_options(page, uploaded, "Delete")
    confirm = page.get_by_role("alertdialog", name="Delete backup")
    expect(confirm).to_contain_text("cannot be undone")
    confirm.get_by_role("button", name="Delete").click()
    expect(uploaded).to_have_count(0)
    expect(page.locator(":focus")).to_have_accessible_name(re.compile("^More Options for the backup of"))  # a neighbour
    expect(page.get_by_text(re.compile("^Deleted the uploaded backup of Production"))).to_be_visible()
    expect(page.get_by_role("table", name="Activity of Production").get_by_role("row").nth(1)).to_contain_text("Delete")

    # The README's screenshot: the main view with a few backups and the activity log.
    create_backup(page, "after the release")
    page.mouse.move(0, 0)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot = README_SCREENSHOT if os.environ.get("APPBACKUPS_UPDATE_SCREENSHOT") else tmp_path / "main-view.png"
    page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 10_000


def test_keyboard_refusals_and_errors_in_words(page: Page, stack: PortalStack) -> None:
    # An environment in a state that cannot be backed up: listed, with the reason, and Create Backup refused.
    body = {
        "namespace": "demo",
        "appName": "demo-app",
        "displayName": "Test",
        "state": "Deploying",
        "database": {"host": "127.0.0.1", "database": "not_used", "user": "postgres"},
        "files": {"container": "demo-files", "prefix": "demo-test/"},
        "modelVersion": "1.5.0",
        "deploymentPackage": "demo-app_1.5.1.3.mda",
    }
    registered = requests.put(f"{stack.api}/environments/demo-test", json=body, timeout=30)
    assert registered.status_code in (200, 201), registered.text
    created = requests.post(f"{stack.api}/environments/demo-production/backups", json={"comment": "keys"}, timeout=30)
    assert created.status_code == 202, created.text

    open_page(page, stack, "demo-test")
    selector = page.get_by_label("Environment", exact=True)
    expect(selector.get_by_role("option", name="Test (demo-test) — Deploying, cannot be backed up")).to_be_attached()
    expect(page.get_by_role("button", name="Create Backup")).to_be_disabled()
    expect(page.get_by_role("button", name="Create Backup")).to_have_accessible_description(
        re.compile("while it is Deploying: a deployment package is being deployed")
    )
    page.get_by_role("button", name="Create Backup").click(force=True)
    expect(page.get_by_role("status").filter(has_text="No backup can be made of Test")).to_be_visible()

    # Stopping an application from the page asks first.
    selector.select_option("demo-production")
    page.get_by_role("button", name="Stop Application").click()
    confirm = page.get_by_role("alertdialog", name="Stop Production?")
    expect(confirm).to_contain_text("stops serving its users")
    confirm.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("button", name="Stop Application")).to_be_focused()
    assert requests.get(f"{stack.api}/environments/demo-production", timeout=30).json()["state"] == "Running"

    # The More Options menu with the keyboard alone.
    row = backup_row(page, "keys")
    expect(row.get_by_text("Finished", exact=True)).to_be_visible(timeout=WORK)
    button = row.get_by_role("button", name="More Options")
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("menuitem", name="Details")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("menuitem", name="Restore")).to_be_focused()
    page.keyboard.press("End")
    expect(page.get_by_role("menuitem", name="Delete")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("menuitem", name="Details")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("menu")).to_be_hidden()
    expect(button).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(page.get_by_role("menuitem", name="Delete")).to_be_focused()
    page.keyboard.press("p")
    expect(page.get_by_role("menuitem", name="Pin")).to_be_focused()
    page.keyboard.press("Enter")
    pin = page.get_by_role("dialog", name="Pin backup")
    expect(pin).to_be_visible()

    # An error of the API, in words: a date in the past is refused (422) and the detail is shown.
    pin.get_by_label("Keep until").fill("2020-01-01")
    pin.get_by_role("button", name="Pin", exact=True).click()
    expect(pin.get_by_role("status")).to_have_text("keepUntil must be in the future.")
    page.keyboard.press("Escape")
    expect(pin).to_be_hidden()
    expect(button).to_be_focused()

    # A restore into an environment that is not Stopped cannot be started; the reason is given.
    button.click()
    page.get_by_role("menuitem", name="Restore").click()
    restore = page.get_by_role("dialog", name="Restore backup")
    restore.get_by_label("Destination environment").select_option("demo-test")
    expect(restore.get_by_text("Test is Deploying: a restore needs it Stopped.")).to_be_visible()
    expect(restore.get_by_role("button", name="Restore Backup")).to_be_disabled()
    restore.get_by_role("button", name="Cancel").click()

    # The function key is kept for the tab and sent with every API call.
    page.get_by_role("button", name="Function key").click()
    key_dialog = page.get_by_role("dialog", name="Function key")
    key_dialog.get_by_label("Function key").fill("a-test-key")
    with page.expect_request(re.compile(r"/api/me$")) as calling:
        key_dialog.get_by_role("button", name="Save").click()
    assert calling.value.headers.get("x-functions-key") == "a-test-key"
    expect(page.get_by_role("button", name="Function key (set)")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('appbackups.functionKey')") == "a-test-key"
    page.get_by_role("button", name="Function key (set)").click()
    with page.expect_request(re.compile(r"/api/me$")) as calling:
        key_dialog.get_by_role("button", name="Forget the key").click()
    assert "x-functions-key" not in calling.value.headers


def test_a_member_without_stop_apps_is_not_offered_stop_start_or_restore(browser: Browser, stack: PortalStack) -> None:
    granted = requests.put(
        f"{stack.api}/namespaces/demo/members/backup-operator",
        json={"permissions": ["ManageAppsBackups"], "name": "Backup Operator"},
        timeout=30,
    )
    assert granted.status_code in (200, 201), granted.text
    backups = f"{stack.api}/environments/demo-production/backups"
    created = requests.post(backups, json={"comment": "operator"}, timeout=30)
    assert created.status_code == 202, created.text
    headers = {"X-MS-CLIENT-PRINCIPAL-ID": "backup-operator", "X-MS-CLIENT-PRINCIPAL-NAME": "Backup Operator"}
    context = browser.new_context(viewport=LAPTOP, locale="en-US", timezone_id="UTC", extra_http_headers=headers)
    try:
        page = context.new_page()
        open_page(page, stack, "demo-production")
        expect(page.get_by_text("Signed in as Backup Operator (member of 1 namespace")).to_be_visible(timeout=QUICK)
        no_stop = "Stopping and starting needs the Stop Apps permission in namespace demo."
        expect(page.get_by_text(no_stop)).to_be_visible()
        expect(page.get_by_role("button", name="Stop Application")).to_have_count(0)
        expect(page.get_by_role("button", name="Deregister…")).to_have_count(0)  # namespace admins only
        expect(page.get_by_role("heading", name=re.compile("^Webhooks"))).to_have_count(0)  # admins only

        row = backup_row(page, "operator")
        expect(row.get_by_text("Finished", exact=True)).to_be_visible(timeout=WORK)
        row.get_by_role("button", name="More Options").click()
        restore = page.get_by_role("menuitem", name="Restore")
        expect(restore).to_have_attribute("aria-disabled", "true")
        no_restore = "restoring needs the Manage Apps Backups and Stop Apps permissions in namespace demo"
        expect(restore).to_contain_text(no_restore)
        restore.click(force=True)
        expect(page.get_by_role("dialog", name="Restore backup")).to_be_hidden()
        expect(page.get_by_role("menuitem", name="Download")).not_to_have_attribute("aria-disabled", "true")
    finally:
        context.close()


def test_an_admin_deregisters_an_environment_and_its_backups_stay(page: Page, stack: PortalStack) -> None:
    production = requests.get(f"{stack.api}/environments/demo-production", timeout=30).json()
    body = {
        "namespace": "demo",
        "appName": "demo-app",
        "displayName": "Retired",
        "state": "Stopped",
        "database": production["database"],
        "files": production["files"],
    }
    assert requests.put(f"{stack.api}/environments/demo-retired", json=body, timeout=30).status_code in (200, 201)
    created = requests.post(f"{stack.api}/environments/demo-retired/backups", json={"comment": "last one"}, timeout=30)
    assert created.status_code == 202, created.text

    open_page(page, stack, "demo-retired")
    row = backup_row(page, "last one")
    expect(row.get_by_text("Finished", exact=True)).to_be_visible(timeout=WORK)
    page.get_by_role("button", name="Deregister…").click()
    confirm = page.get_by_role("alertdialog", name="Deregister Retired?")
    expect(confirm).to_contain_text("Its backups stay until they expire")
    confirm.get_by_role("button", name="Deregister").click()
    expect(page.get_by_text("Retired is deregistered; its backups stay until they expire.")).to_be_visible(
        timeout=QUICK
    )

    selector = page.get_by_label("Environment", exact=True)
    expect(
        selector.get_by_role("option", name="Retired (demo-retired) — Deregistered, cannot be backed up")
    ).to_be_attached()
    expect(page.get_by_text(re.compile(r"^Retired \(demo-retired\) was deregistered on .* by "))).to_be_visible()
    expect(page.get_by_role("button", name="Create Backup")).to_be_disabled()
    expect(page.get_by_role("button", name="Deregister…")).to_have_count(0)
    expect(row.get_by_text("Finished", exact=True)).to_be_visible()  # the backup stays, and restores elsewhere
    more_options(page, row, "Restore")
    restore = page.get_by_role("dialog", name="Restore backup")
    destinations = restore.get_by_label("Destination environment").get_by_role("option")
    expect(destinations.filter(has_text="demo-acceptance")).to_have_count(1)
    expect(destinations.filter(has_text="demo-retired")).to_have_count(0)
    restore.get_by_role("button", name="Cancel").click()
    activity = requests.get(f"{stack.api}/environments/demo-retired/activity", timeout=30).json()["items"]
    assert activity[0]["action"] == "deregister"


def test_an_admin_adds_a_webhook_sees_its_last_delivery_and_removes_it(page: Page, stack: PortalStack) -> None:
    open_page(page, stack, "demo-production")
    card = page.get_by_role("region", name="Webhooks of namespace demo")
    expect(card).to_be_visible(timeout=QUICK)
    expect(card.get_by_text("No webhook receives this namespace's events.")).to_be_visible()
    card.get_by_label("Name").fill("ops-alerts")
    card.get_by_label("URL").fill("http://127.0.0.1:9/hooks")  # nothing listens there: deliveries fail
    card.get_by_label("Events").fill("appbackups.backup.finished, appbackups.backup.failed")
    card.get_by_role("button", name="Add Webhook").click()
    expect(card.get_by_text("Webhook ops-alerts is registered.")).to_be_visible(timeout=QUICK)
    secret = card.locator("#webhook-secret")
    expect(secret).to_have_text(re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$"))
    row = card.get_by_role("row").filter(has_text="ops-alerts")
    expect(row).to_contain_text("http://127.0.0.1:9/hooks")
    expect(row).to_contain_text("appbackups.backup.finished, appbackups.backup.failed")
    listed = requests.get(f"{stack.api}/namespaces/demo/webhooks", timeout=30).json()["items"]
    assert [(item["id"], item["secretSet"]) for item in listed] == [("ops-alerts", True)]

    create_backup(page, "with a webhook")
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while "Connection refused" not in (row.text_content() or ""):  # the first attempt, seen after a Refresh
        assert datetime.now(UTC) < deadline, row.text_content()
        page.get_by_role("button", name="Refresh").click()
        page.wait_for_timeout(500)
    expect(row).to_contain_text("Pending backup.finished")
    deliveries = requests.get(f"{stack.api}/namespaces/demo/webhooks/ops-alerts/deliveries", timeout=30).json()
    assert deliveries["items"][0]["eventType"] == "appbackups.backup.finished"

    row.get_by_role("button", name="Remove webhook ops-alerts").click()
    confirm = page.get_by_role("alertdialog", name="Remove webhook")
    confirm.get_by_role("button", name="Remove").click()
    expect(card.get_by_text("Webhook ops-alerts was removed.")).to_be_visible(timeout=QUICK)
    expect(card.get_by_role("row").filter(has_text="ops-alerts")).to_have_count(0)
    assert requests.get(f"{stack.api}/namespaces/demo/webhooks", timeout=30).json()["items"] == []
