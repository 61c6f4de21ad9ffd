"""A production install imports cleanly: every module under ``gateway/`` without the dev extras.

``pip install gateway`` brings only ``[project] dependencies``; pytest, hypothesis, aiosmtpd and
the rest of ``[dev]`` are absent, and so are the project's ``tests`` and ``bench`` packages. A
fresh interpreter with a finder that refuses those names imports every module of the package
(``pkgutil.walk_packages``); the servers the tests need live in ``tests/support/`` for this
reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: Top-level names a production install does not have: the ``dev`` extra and the project's own
#: test and benchmark packages.
ABSENT_IN_PRODUCTION = (
    "_pytest",
    "aiosmtpd",
    "bench",
    "httpx",
    "hypothesis",
    "mypy",
    "playwright",
    "pytest",
    "pytest_asyncio",
    "schemathesis",
    "sepaxml",
    "tests",
)

_IMPORT_EVERYTHING = """
import importlib, importlib.abc, json, pkgutil, sys

ABSENT = set(sys.argv[1].split(","))


class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r} (not in production)", name=name)
        return None


sys.meta_path.insert(0, Absent())
failures = {}
try:
    import aiosmtpd  # the finder must refuse it, or this test proves nothing
    blocking = False
except ModuleNotFoundError:
    blocking = True

import gateway

names = ["gateway"]


def failed(name):
    failures[name] = repr(sys.exc_info()[1])


for info in pkgutil.walk_packages(gateway.__path__, "gateway.", onerror=failed):
    names.append(info.name)
    if info.name.endswith(".__main__"):  # runs the CLI when imported; `python -m` is its use
        continue
    try:
        importlib.import_module(info.name)
    except BaseException as exc:
        failures[info.name] = repr(exc)
print(json.dumps({"blocking": blocking, "modules": names, "failures": failures}))
"""


def test_every_gateway_module_imports_without_dev_dependencies(tmp_path: Path) -> None:
    # Outside the project root, so that nothing beside the installed package is on sys.path.
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING, ",".join(ABSENT_IN_PRODUCTION)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["blocking"], "the finder did not refuse aiosmtpd"
    assert report["failures"] == {}
    modules = set(report["modules"])
    expected = {"gateway.cli", "gateway.daemon", "gateway.testing.messages", "gateway.web.server"}
    assert expected <= modules
    assert len(modules) > 50
