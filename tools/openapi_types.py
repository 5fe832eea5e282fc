"""The Backups page's API types: ``build_openapi()`` written to ``functions/portal_files/types/openapi.json``,
from which ``make portal-types`` generates ``api.d.ts`` with openapi-typescript; ``--check`` fails when stale."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "functions" / "portal_files" / "types" / "openapi.json"


def document_text() -> str:
    """The API's OpenAPI document as the committed file holds it."""
    from functions.openapi import build_openapi

    return json.dumps(build_openapi(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.openapi_types", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the written document is stale")
    parser.add_argument("--file", type=Path, default=DOCUMENT, help="where the document goes (default: %(default)s)")
    args = parser.parse_args(argv)
    path: Path = args.file
    text = document_text()
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if args.check:
        if current != text:
            print(f"{path} is stale (the API changed): run make portal-types and commit both files", file=sys.stderr)
            return 1
        return 0
    if current != text:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
