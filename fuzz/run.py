"""Run the fuzz targets: ``python -m fuzz.run [--seconds N] [TARGET...]``.

Each target runs in a process of its own (``python -m fuzz.one TARGET``, libFuzzer through
atheris) for ``--seconds``, mutating its corpus in ``fuzz/corpus/<target>/`` (seeded from
``fixtures/``); new interesting inputs go to a scratch directory, never into the repository.
A crash is written to ``fuzz/crashes/`` and the run exits 1: fix it, then copy the input into
the target's corpus, where ``tests/test_fuzz.py`` replays it on every test run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parent
CRASHES = ROOT / "crashes"


def run(target: str, seconds: int) -> int:
    """One target for ``seconds``; its exit code (0: nothing found)."""
    CRASHES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as scratch:
        command = [
            sys.executable,
            "-m",
            "fuzz.one",
            target,
            f"-max_total_time={seconds}",
            "-rss_limit_mb=2048",
            "-timeout=10",
            f"-artifact_prefix={CRASHES}/{target}-",
            scratch,
            str(ROOT / "corpus" / target),
        ]
        return subprocess.run(command, cwd=ROOT.parent, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("targets", nargs="*", default=sorted(TARGETS))
    args = parser.parse_args(argv)
    failed = [target for target in args.targets if run(target, args.seconds) != 0]
    if failed:
        print(f"fuzz: crashes in {', '.join(failed)}; see {CRASHES}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
