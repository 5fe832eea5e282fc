"""Debian's Chromium driven by Playwright, the way the Backups page is tested (no Playwright-downloaded browser)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

CHROMIUM = os.environ.get("APPBACKUPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# The laptop width the page is made for, and the size of the README's screenshot.
LAPTOP = {"width": 1366, "height": 800}


def chromium_missing() -> str:
    """Why the browser tests cannot run here, or "" when they can."""
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"{CHROMIUM} is missing: run 'make browser' (Debian's chromium package)"
    return ""


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Launch Chromium headless; it is closed (and its processes ended) on exit."""
    playwright: Playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def laptop_page() -> Iterator[Page]:
    """A page in a fresh Chromium at laptop size (UTC, en-US). Fails when Chromium is missing, and on exit
    when the page threw."""
    missing = chromium_missing()
    if missing:
        pytest.fail(missing)
    with chromium() as browser:
        context = browser.new_context(viewport=LAPTOP, locale="en-US", timezone_id="UTC")
        opened = context.new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda error: errors.append(str(error)))
        yield opened
        context.close()
    assert errors == [], f"the page threw: {errors}"
