"""The Backups page's API types are the API's: the committed OpenAPI document is build_openapi()'s, and the
generated api.d.ts names the same schemas (make lint regenerates it with node and compares the whole file)."""

import json
import re

from tools.openapi_types import DOCUMENT, document_text, main

TYPES = DOCUMENT.parent / "api.d.ts"


def test_the_committed_document_is_the_apis():
    assert DOCUMENT.read_text(encoding="utf-8") == document_text(), "stale: run make portal-types and commit"


def test_the_generated_types_name_the_documents_schemas():
    schemas = set(json.loads(DOCUMENT.read_text(encoding="utf-8"))["components"]["schemas"])
    text = TYPES.read_text(encoding="utf-8")
    block = text[text.index("    schemas: {") : text.index("    responses: ")]
    named = set(re.findall(r"^ {8}([A-Za-z_][A-Za-z0-9_]*): ", block, flags=re.MULTILINE))
    assert named == schemas


def test_check_fails_on_a_stale_document_and_writing_makes_it_current(tmp_path, capsys):
    document = tmp_path / "openapi.json"
    assert main(["--check", "--file", str(document)]) == 1
    assert main(["--file", str(document)]) == 0
    assert main(["--check", "--file", str(document)]) == 0
    renamed = document.read_text(encoding="utf-8").replace('"BackupView"', '"SnapshotView"')
    document.write_text(renamed, encoding="utf-8")
    assert main(["--check", "--file", str(document)]) == 1
    assert "make portal-types" in capsys.readouterr().err
