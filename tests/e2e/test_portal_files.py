"""The Backups page's files over HTTP: public, typed, and nothing outside its folder."""

import pytest
import requests

pytestmark = pytest.mark.e2e


def test_the_page_and_its_assets(api):
    page = requests.get(f"{api}/portal", timeout=30)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert '<script type="module" src="portal/app.js">' in page.text
    script = requests.get(f"{api}/portal/app.js", timeout=30)
    assert (script.status_code, script.headers["Content-Type"].split(";")[0]) == (200, "text/javascript")
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert requests.get(f"{api}/portal/styles.css", timeout=30).headers["Content-Type"].startswith("text/css")


def test_a_trailing_slash_goes_back_to_the_page(api):
    slash = requests.get(f"{api}/portal/", allow_redirects=False, timeout=30)
    assert (slash.status_code, slash.headers["Location"]) == (308, "/api/portal")
    assert requests.get(f"{api}/portal/", timeout=30).url == f"{api}/portal"


@pytest.mark.parametrize("name", ["missing.js", "../portal.py", "..%2Fportal.py", "%2e%2e/http.py", "app.py"])
def test_nothing_else_is_served(api, name):
    response = requests.get(f"{api}/portal/{name}", timeout=30)
    assert response.status_code == 404, response.text[:200]
    assert response.headers["Content-Type"].startswith("application/problem+json")
