"""Shared test fixtures.

The official standards (XSDs and samples) live outside the project in ``../shared/standards``:
CI has them, a user's machine may not. Tests that need them take the ``standards`` fixture, which
skips with a clear reason where they are absent. ``GATEWAY_STANDARDS_DIR`` overrides the path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STANDARDS_DIR = Path(
    os.environ.get("GATEWAY_STANDARDS_DIR", PROJECT_ROOT.parent / "shared" / "standards")
)
FIXTURES_DIR = PROJECT_ROOT / "fixtures"


@pytest.fixture(scope="session")
def standards() -> Path:
    """The directory of official standards; skips the test where it does not exist."""
    if not (STANDARDS_DIR / "SOURCES.md").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the official standards at {STANDARDS_DIR}")
        pytest.skip(
            f"official standards not found at {STANDARDS_DIR} "
            "(set GATEWAY_STANDARDS_DIR to a checkout of shared/standards to run this test)"
        )
    return STANDARDS_DIR
