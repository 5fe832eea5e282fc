"""/api/docs: the OpenAPI description rendered by Swagger UI, whose files the app serves itself (no CDN),
in Debian's Chromium against the real app in the development host: it lists every route."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, Request, expect

from tests.support.portal_browser import LAPTOP, chromium, chromium_missing

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    missing = chromium_missing()
    if missing:
        pytest.fail(missing)
    with chromium() as launched:
        yield launched


def test_the_docs_page_renders_every_route_from_the_app_alone(browser, api):
    document = requests.get(f"{api}/openapi.json", timeout=30).json()
    described = {**document["paths"], **document["webhooks"]}  # the events a webhook receives render too
    expected = {(method.upper(), path) for path, operations in described.items() for method in operations}
    assert ("DELETE", "/api/environments/{env}") in expected
    assert ("POST", "appbackups.backup.failed") in expected

    context = browser.new_context(viewport=LAPTOP, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    elsewhere: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def note(request: Request) -> None:
        if not request.url.startswith(api.removesuffix("/api")):
            elsewhere.append(request.url)

    page.on("request", note)
    try:
        page.goto(f"{api}/docs")
        operations = page.locator(".opblock")
        expect(operations.first).to_be_visible(timeout=30_000)
        expect(operations).to_have_count(len(expected), timeout=30_000)
        shown = set()
        for index in range(operations.count()):
            block = operations.nth(index)
            method = block.locator(".opblock-summary-method").inner_text().strip().upper()
            path = block.locator(".opblock-summary-path").get_attribute("data-path")
            shown.add((method, path))
        assert shown == expected
        expect(page.get_by_role("heading", name="appbackups")).to_be_visible()
        expect(page.get_by_role("link", name="The Backups page")).to_have_attribute("href", "portal")
    finally:
        context.close()
    assert errors == []
    assert elsewhere == [], "the docs page fetched something from outside the app"


def test_the_backups_page_links_to_the_docs(api):
    assert '<a class="top-bar-link" href="docs">API docs</a>' in requests.get(f"{api}/portal", timeout=30).text


def test_the_docs_assets(api):
    page = requests.get(f"{api}/docs", timeout=30)
    assert (page.status_code, page.headers["Content-Type"].split(";")[0]) == (200, "text/html")
    for name, media in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"),
                        ("docs.js", "text/javascript"), ("docs.css", "text/css")):  # fmt: skip
        response = requests.get(f"{api}/docs/{name}", timeout=30)
        assert (response.status_code, response.headers["Content-Type"].split(";")[0]) == (200, media), name
    slash = requests.get(f"{api}/docs/", allow_redirects=False, timeout=30)
    assert (slash.status_code, slash.headers["Location"]) == (308, "/api/docs")


@pytest.mark.parametrize(
    "name", ["index.html", "swagger-ui.js.map", "../docs.py", "%2e%2e/http.py", "oauth2-redirect.html"]
)
def test_nothing_else_is_served(api, name):
    response = requests.get(f"{api}/docs/{name}", timeout=30)
    assert response.status_code == 404, response.text[:200]
