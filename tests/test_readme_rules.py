"""The README's table of implemented rules is the registry's, never stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_lists_exactly_the_registered_rules() -> None:
    spec = importlib.util.spec_from_file_location("rules_table", ROOT / "tools" / "rules_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert module.current_readme_table(readme) == module.table(), (
        "README.md's rules table is stale: run .venv/bin/python tools/rules_table.py --write"
    )
