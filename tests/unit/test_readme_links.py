"""The README is the front page: every file it links to exists, so that "where to read on" leads somewhere
(the documentation site's own links are checked by its strict build, make docs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_link_of_the_readme_leads_to_a_file_of_the_checkout() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [target for target in re.findall(r"\]\(([^)\s]+)\)", readme) if "://" not in target]
    assert len(targets) >= 15, "the README links the documentation's pages"
    missing = [target for target in targets if not (ROOT / target.split("#")[0]).exists()]
    assert not missing, f"README.md links to what does not exist: {missing}"
    assert any(target.startswith("docs/guide/") for target in targets)
