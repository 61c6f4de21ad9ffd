"""The fuzz targets (``fuzz/``): every corpus file replays without a crash, and each target
survives a bounded coverage-guided run (``make fuzz`` runs them longer)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.targets import TARGETS

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
#: Per target in the test run; ``make fuzz`` takes FUZZ_SECONDS (600) each.
SECONDS = 20


def corpus() -> list[tuple[str, Path]]:
    return [
        (target, path)
        for target in sorted(TARGETS)
        for path in sorted((FUZZ / "corpus" / target).iterdir())
    ]


def test_every_target_has_a_seed_corpus() -> None:
    assert {target for target, _ in corpus()} == set(TARGETS)


@pytest.mark.parametrize(("target", "path"), corpus(), ids=lambda v: getattr(v, "name", v))
def test_every_corpus_file_is_answered_without_a_crash(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())  # a MessageError is an answer; anything else fails


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_bounded_fuzzing_run_finds_no_crash(target: str) -> None:
    pytest.importorskip("atheris")
    done = subprocess.run(
        [sys.executable, "-m", "fuzz.run", "--seconds", str(SECONDS), target],
        cwd=FUZZ.parent,
        capture_output=True,
        text=True,
        timeout=SECONDS * 6,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done" in done.stderr
