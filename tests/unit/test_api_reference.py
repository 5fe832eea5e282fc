"""The HTTP API reference of the documentation site (tools/api_reference.py), rendered from build_openapi() when
the site is built: every route, schema and event of the API has its heading, every link on the page leads to one,
and what the document says is shown as text, never taken for markup."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from functions.openapi import build_openapi
from tools import api_reference, mkdocs_hooks


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi()


@pytest.fixture(scope="module")
def page(document: dict[str, Any]) -> str:
    return api_reference.render(document)


def anchors(page: str) -> set[str]:
    return set(re.findall(r"\{ #([^ }]+) \}$", page, re.M)) | {"routes-at-a-glance", "errors"}


def test_every_route_schema_and_event_has_its_heading(document: dict[str, Any], page: str) -> None:
    defined = anchors(page)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["operationId"] in defined, f"{method.upper()} {path}"
            assert f"### `{method.upper()} {path}` {{ #{operation['operationId']} }}" in page
    for name in document["components"]["schemas"]:
        assert api_reference.schema_anchor(name) in defined, name
    for name in document["webhooks"]:
        assert api_reference.event_anchor(name) in defined, name
    headings = re.findall(r"\{ #([^ }]+) \}$", page, re.M)
    assert len(headings) == len(set(headings)), "two headings share an anchor"


def test_every_link_on_the_page_leads_to_a_heading_of_it(page: str) -> None:
    links = set(re.findall(r"\]\(#([^)]+)\)", page))
    assert links, "the page links its routes and schemas"
    assert links <= anchors(page), sorted(links - anchors(page))
    assert "## Routes at a glance" in page
    assert "## Errors" in page


def test_the_errors_every_route_answers_are_said_once(document: dict[str, Any], page: str) -> None:
    usual_404 = api_reference.Reference(document).usual["404"]
    assert page.count(api_reference._cell(usual_404)) == 1
    planted = copy.deepcopy(document)
    operation = planted["paths"]["/api/environments/{env}"]["get"]
    operation["responses"]["404"] = {**operation["responses"]["404"], "description": "No such environment here."}
    rendered = api_reference.render(planted)
    assert "| 404 | No such environment here. |" in rendered, "a route's own description of an error is shown"


def test_a_reference_to_a_schema_the_document_lacks_is_refused(document: dict[str, Any]) -> None:
    broken = copy.deepcopy(document)
    broken["components"]["schemas"].pop("RestoreBody")
    with pytest.raises(ValueError, match="RestoreBody"):
        api_reference.render(broken)
    nameless = copy.deepcopy(document)
    del nameless["paths"]["/api/health"]["get"]["operationId"]
    with pytest.raises(ValueError, match="GET /api/health"):
        api_reference.render(nameless)


def test_types_read_as_a_reader_wants_them() -> None:
    reference = api_reference.Reference({"components": {"schemas": {"BackupView": {"type": "object"}}}})
    assert reference.type_of({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}) == (
        "string (date-time) or null"
    )
    assert reference.type_of({"type": "array", "items": {"$ref": "#/components/schemas/BackupView"}}) == (
        "array of [BackupView](#schema-backupview)"
    )
    assert reference.type_of({"enum": ["pass", "warn"]}) == 'one of `"pass"`, `"warn"`'
    assert reference.type_of({"type": "object", "additionalProperties": {"type": "integer"}}) == "object of integer"


def test_the_documents_words_are_text_not_markup() -> None:
    assert api_reference._text("Uploaded <fileName>, see `a <b>` & *all*") == (
        r"Uploaded &lt;fileName&gt;, see `a <b>` &amp; \*all\*"
    )
    assert api_reference._cell("one | two\nlines") == r"one \| two lines"


def test_the_site_build_renders_the_reference_where_the_page_asks_for_it(page: str) -> None:
    asked = f"# HTTP API reference\n\n{mkdocs_hooks.MARKER}\n"
    assert mkdocs_hooks.on_page_markdown(asked, page=None) == f"# HTTP API reference\n\n{page}\n"
    other = "# Restores\n\nNo reference here.\n"
    assert mkdocs_hooks.on_page_markdown(other, page=None) == other
