"""Every row of the public rule catalogue is accounted for in the README: named in the basis of
a rule in the rules table, or in the list of rows that are not a rule of their own, with why.

The catalogue lives beside the project (``../shared/reference/rules-catalogue.md``); without it
the test skips, as the conformance tests do, and fails in CI.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import PROJECT_ROOT, STANDARDS_DIR

CATALOGUE = STANDARDS_DIR.parent / "reference" / "rules-catalogue.md"
_ROW_ID = re.compile(r"^\|\s*([A-Z]+-\d{3})\s*\|", re.MULTILINE)
# "ELIG-006/008/009" names ELIG-006, ELIG-008 and ELIG-009.
_NAMED = re.compile(r"\b([A-Z]+)-(\d{3}(?:/\d{3})*)\b")


def named_in(text: str) -> set[str]:
    return {
        f"{prefix}-{number}"
        for prefix, numbers in _NAMED.findall(text)
        for number in numbers.split("/")
    }


def catalogue_rows() -> list[str]:
    if not CATALOGUE.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the rule catalogue at {CATALOGUE}")
        pytest.skip(f"the rule catalogue is not at {CATALOGUE} (../shared/reference)")
    return _ROW_ID.findall(CATALOGUE.read_text(encoding="utf-8"))


def test_the_shorthand_is_read() -> None:
    assert named_in("TECH-001/002/003 and PAY-004") == {
        "TECH-001",
        "TECH-002",
        "TECH-003",
        "PAY-004",
    }


def test_every_catalogue_row_is_accounted_for_in_the_readme() -> None:
    rows = catalogue_rows()
    assert len(rows) >= 150, "the catalogue's row ids were not found: has its format changed?"
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    missing = sorted(set(rows) - named_in(readme))
    assert not missing, (
        "catalogue rows neither a rule's basis nor explained in the README: " + ", ".join(missing)
    )
