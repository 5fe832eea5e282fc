"""MkDocs hooks of the documentation site (mkdocs.yml ``hooks:``): the HTTP API reference rendered into the page
that asks for it, from ``build_openapi()`` at build time (tools/api_reference.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- the API reference: rendered here at build time by tools/api_reference.py -->"


def _importable() -> None:
    # MkDocs loads this file by its path, and puts sys.path back as it was afterwards: the repository's packages
    # are imported from its root.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    _importable()
    from tools import api_reference

    return markdown.replace(MARKER, api_reference.current(), 1)
