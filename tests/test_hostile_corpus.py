"""The hostile corpus (``tests/support/hostile*.py``): every input gets exactly its answer.

Three runs: every case without partners through the pipeline (fast); the signature cases
through a pipeline with a CPA and our keys; and a subset with every family and the file-system
cases through a real daemon process, which must stay up and answer (or park) each as named.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.partners.registry import PartnerRegistry
from gateway.pipeline import Pipeline
from gateway.rules.engine import RuleEngine
from gateway.rules.registry import RULES
from gateway.store import Store
from gateway.testing.cpa import write_cpa
from gateway.validation.catalog import SchemaCatalog
from tests.conftest import IDENTITY
from tests.support.hostile import Case, answer_of_replies
from tests.support.hostile_corpus import file_cases, plain_cases, run, secured_cases
from tests.support.hostile_mime import expired_partner_cpa
from tests.support.pki import TestPki
from tests.test_pipeline_security import NOW, cpa_spec

ANSWERS = ("accepted", "duplicate", "apprec:", "ebxml:", "parked:")


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create(now=NOW)


@pytest.fixture(scope="module")
def corpus(pki: TestPki) -> list[Case]:
    return [*plain_cases(), *secured_cases(pki), *file_cases()]


def test_the_corpus_has_300_named_cases_across_every_family(corpus: list[Case]) -> None:
    assert len(corpus) >= 300
    assert len({case.name for case in corpus}) == len(corpus)
    families = Counter(case.family for case in corpus)
    assert set(families) == {"xml", "mime", "compression", "size", "signature", "ebxml", "fs"}, (
        families
    )
    assert all(case.expect.startswith(ANSWERS) for case in corpus)


def mismatches(pipeline: Pipeline, cases: list[Case]) -> Iterator[str]:
    for index, case in enumerate(cases):
        started = time.perf_counter()
        got = run(pipeline, case, f"hostile-{index}")
        seconds = time.perf_counter() - started
        if got != case.expect:
            yield f"{case.name}: expected {case.expect}, got {got}"
        elif seconds > 5:
            yield f"{case.name}: answered in {seconds:.1f} s"


@pytest.mark.slow
def test_every_plain_case_gets_its_answer(
    make_pipeline: Callable[..., Pipeline], corpus: list[Case]
) -> None:
    cases = [c for c in corpus if not c.secured and c.fs is None]
    assert list(mismatches(make_pipeline(), cases)) == []


def test_every_signature_case_gets_its_answer(
    store: Store, catalog: SchemaCatalog, pki: TestPki, tmp_path: Path, corpus: list[Case]
) -> None:
    write_cpa(tmp_path, cpa_spec(pki))
    write_cpa(tmp_path, expired_partner_cpa(pki), name="expired.xml")
    pipeline = Pipeline(
        identity=IDENTITY,
        store=store,
        catalog=catalog,
        signer=pki.gateway.signer(),
        engine=RuleEngine(RULES),
        max_message_bytes=10 * 1024 * 1024,
        clock=lambda: NOW,
        partners=PartnerRegistry.load(tmp_path),
        decryption_keys=[pki.gateway.decryption_key()],
    )
    cases = [c for c in corpus if c.secured]
    assert len(cases) >= 10
    assert list(mismatches(pipeline, cases)) == []


# --- through a real daemon ---------------------------------------------------------------------


def daemon_subset(corpus: list[Case]) -> list[Case]:
    """One case in six of every family, the oversized ones, and every file-system case."""
    plain = [c for c in corpus if not c.secured and c.fs is None and not c.replay]
    chosen = [c for i, c in enumerate(plain) if i % 6 == 0 or c.oversized]
    return chosen + [c for c in corpus if c.fs is not None]


def drop(incoming: Path, case: Case, outside: Path) -> None:
    if case.fs == "symlink":
        (incoming / f"{case.name}.msg").symlink_to(outside)
    elif case.fs == "fifo":
        os.mkfifo(incoming / f"{case.name}.msg")
    elif case.fs == "directory":
        (incoming / f"{case.name}.msg").mkdir()
    else:
        name = f"{case.name}.msg".encode()
        if case.fs == "nonutf8":
            name = f"{case.name}-".encode() + b"\xff\xfe.msg"
        elif case.fs == "longname":
            name = case.name.encode() + b"-" + b"x" * (250 - len(case.name)) + b".msg"
        tmp = os.fsencode(incoming) + b"/." + name[:200] + b".tmp"
        with open(tmp, "wb") as fh:
            fh.write(case.data)
        os.rename(tmp, os.fsencode(incoming) + b"/" + name)


def daemon_answer(site: Path, case: Case) -> str | None:
    if case.expect.startswith("parked:"):
        bad = site / "var" / "spool" / "bad"
        if not bad.is_dir():
            return None
        parked = [p for p in bad.iterdir() if p.name.endswith(f"--{case.name}.msg.reason")]
        return case.expect if parked else None
    outbox = site / "var" / "outbox"
    if not outbox.is_dir():
        return None
    stem = case.name if case.fs is None else case.name + "-"  # a prefix of the shown name
    replies = sorted(
        p
        for p in outbox.iterdir()
        if p.name.startswith(stem + ".") or (case.fs is not None and p.name.startswith(stem))
    )
    return answer_of_replies(p.read_bytes() for p in replies) if replies else None


@pytest.mark.integration
@pytest.mark.slow
def test_the_daemon_stays_up_and_answers_each_hostile_file_as_named(
    tmp_path: Path, corpus: list[Case]
) -> None:
    from tests.test_daemon_e2e import CONFIG, gateway, start

    (tmp_path / "gateway.toml").write_text(CONFIG, encoding="utf-8")
    assert gateway("keys", "generate", "--config", "gateway.toml", cwd=tmp_path).returncode == 0
    incoming = tmp_path / "var" / "spool" / "incoming"
    incoming.mkdir(parents=True)
    outside = tmp_path / "secret.txt"
    outside.write_text("never read")
    daemon = start(tmp_path)
    try:
        cases = daemon_subset(corpus)
        assert len(cases) >= 50
        time.sleep(1.0)  # the spool watches incoming/ by now
        for case in cases:
            drop(incoming, case, outside)
        pending = {case.name: case for case in cases}
        deadline = time.monotonic() + 240
        got: dict[str, str | None] = {}
        while pending and time.monotonic() < deadline:
            assert daemon.poll() is None, (tmp_path / "var" / "daemon.log").read_text()[-3000:]
            for name, case in list(pending.items()):
                got[name] = daemon_answer(tmp_path, case)
                if got[name] is not None:
                    del pending[name]
            time.sleep(0.2)
        wrong = {c.name: (c.expect, got.get(c.name)) for c in cases if got.get(c.name) != c.expect}
        assert wrong == {}
        assert daemon.poll() is None  # still up after all of them
        assert os.listdir(incoming) == []
        assert outside.read_text() == "never read"
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=60)
    assert code == 0
    log = (tmp_path / "var" / "daemon.log").read_text()
    assert "message_failed" not in log and "Traceback" not in log


@pytest.mark.integration
def test_a_second_daemon_on_the_same_spool_exits_78_with_a_clear_message(tmp_path: Path) -> None:
    from tests.test_daemon_e2e import CONFIG, gateway, start

    (tmp_path / "gateway.toml").write_text(CONFIG, encoding="utf-8")
    assert gateway("keys", "generate", "--config", "gateway.toml", cwd=tmp_path).returncode == 0
    first = start(tmp_path)
    try:
        time.sleep(2.0)
        assert first.poll() is None
        second = subprocess.run(
            [sys.executable, "-m", "gateway", "run", "--config", "gateway.toml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 78, second.stderr[-2000:]
        assert "in use by another gateway daemon" in second.stderr
        assert "spool.shared" in second.stderr
        assert first.poll() is None  # the first one goes on
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
