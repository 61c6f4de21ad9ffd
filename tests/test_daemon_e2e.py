"""End to end against the real daemon process: spool in, signed AppRecs out, crash-safe.

The daemon runs as ``python -m gateway run`` on a config in a temporary directory. One test kills
it with SIGKILL in the middle of a batch, twice, then lets a restart finish the spool, and checks
that every dropped message is answered exactly once and nothing is lost.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.ebxml import mime
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.namespaces import APPREC_NS
from gateway.receipts.apprec import read_apprec
from gateway.security.certificates import load_certificate_file
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message, open_reply

pytestmark = pytest.mark.integration

TARIFF_FILES = ("takster.csv", "nlk-codes.csv", "nlk-rates.csv")

CONFIG = """
[identity]
name = "HELFO e2e"
her_id = "79768"
enh_id = "889640782"
mail_address = "gateway@kuhr.test"

[database]
path = "var/gateway.sqlite3"

[spool]
directory = "var/spool"
poll_interval = 0.1
settle_seconds = 0

[outbox]
kind = "file"
directory = "var/outbox"

[signing]
key_file = "var/keys/key.pem"
cert_file = "var/keys/cert.pem"

[logging]
level = "info"
format = "json"

[daemon]
drain_seconds = 20
"""


def gateway(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "gateway.toml").write_text(CONFIG, encoding="utf-8")
    result = gateway("keys", "generate", "--config", "gateway.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path


def drop_claims(site: Path, count: int) -> dict[str, str]:
    """Drop ``count`` claim messages; returns file name -> ebXML MessageId."""
    incoming = site / "var" / "spool" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    dropped: dict[str, str] = {}
    for i in range(count):
        rng = random.Random(1000 + i)
        head, krav = make_claim(
            rng=rng,
            practitioner=("tannlege", "lege", "psykolog", "lab")[i % 4],
            bills=1 + i % 5,
            sender=default_sender(),
            receiver=default_receiver(),
            start=datetime(2026, 9, 1, 8, 0),
        )
        message_id = f"e2e-{i:04d}@sender.test"
        raw = ebxml_message(
            msghead_with_bkm(head, krav),
            rng=rng,
            message_id=message_id,
            timestamp=datetime(2026, 11, 1, 10, 0, tzinfo=UTC),
        )
        name = f"claim-{i:04d}.msg"
        tmp = incoming / f".{name}.tmp"
        tmp.write_bytes(raw)
        tmp.rename(incoming / name)
        dropped[name] = message_id
    return dropped


def start(site: Path) -> subprocess.Popen[bytes]:
    """Start the daemon; its log (stderr) goes to var/daemon.log, never to a pipe that fills."""
    (site / "var").mkdir(exist_ok=True)
    with (site / "var" / "daemon.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", "gateway.toml"],
            cwd=site,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def processed_count(site: Path) -> int:
    directory = site / "var" / "spool" / "processed"
    return len(list(directory.iterdir())) if directory.exists() else 0


def wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def replies_by_kind(site: Path) -> dict[str, Counter[str]]:
    """kind -> Counter of the RefToMessageId each reply answers."""
    found: dict[str, Counter[str]] = {}
    for path in (site / "var" / "outbox").glob("*.eml"):
        envelope = parse_envelope(mime.unwrap(path.read_bytes()).envelope.body)
        kind = path.name.split(".")[-3]
        ref = envelope.acknowledgment_ref or envelope.header.ref_to_message_id or "?"
        found.setdefault(kind, Counter())[ref] += 1
    return found


def test_sigkill_mid_batch_then_restart_answers_every_message_exactly_once(site: Path) -> None:
    dropped = drop_claims(site, 60)
    for kill_after in (8, 25):
        daemon = start(site)
        try:
            wait_for(lambda n=kill_after: processed_count(site) >= n, timeout=120)
            # Land the kill at a random point inside the next message's processing.
            time.sleep(random.uniform(0.0, 0.02))
        finally:
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(timeout=30)
        assert daemon.returncode == -signal.SIGKILL
    finished = gateway("run", "--config", "gateway.toml", "--once", cwd=site)
    assert finished.returncode == 0, finished.stderr[-3000:]

    spool = site / "var" / "spool"
    assert sorted(p.name.split("--", 1)[1] for p in (spool / "processed").iterdir()) == sorted(
        dropped
    )
    assert list((spool / "work").iterdir()) == []
    assert list((spool / "incoming").iterdir()) == []
    assert not (spool / "bad").exists() or list((spool / "bad").iterdir()) == []

    replies = replies_by_kind(site)
    expected = Counter(dropped.values())
    assert replies["apprec"] == expected, "every message answered by exactly one AppRec"
    assert replies["acknowledgment"] == expected, "and acknowledged exactly once"
    assert set(replies) == {"apprec", "acknowledgment"}

    cert = load_certificate_file(site / "var" / "keys" / "cert.pem")
    for path in (site / "var" / "outbox").glob("*.apprec.*.eml"):
        # The bare AppRec, covered by our signed envelope's cid: reference.
        reply = open_reply(path.read_bytes(), cert)
        assert reply.apprec is not None and reply.apprec.tag == f"{{{APPREC_NS}}}AppRec"

    with sqlite3.connect(site / "var" / "gateway.sqlite3") as db:
        outcomes = dict(db.execute("SELECT outcome, COUNT(*) FROM received GROUP BY outcome"))
        pending = db.execute("SELECT COUNT(*) FROM replies WHERE state='pending'").fetchone()[0]
        raws = db.execute("SELECT COUNT(DISTINCT sha256) FROM received").fetchone()[0]
    assert outcomes == {"accepted": 60}
    assert pending == 0
    assert raws == 60


def committed_and_moved(site: Path) -> tuple[int, int]:
    """(messages committed in the database, spool files moved to processed/), read from outside
    while the daemon runs."""
    uri = f"{(site / 'var' / 'gateway.sqlite3').as_uri()}?mode=ro"
    try:
        with sqlite3.connect(uri, uri=True, timeout=1) as db:
            committed = int(db.execute("SELECT COUNT(*) FROM received").fetchone()[0])
    except sqlite3.Error:
        committed = 0
    return committed, processed_count(site)


def test_sigkill_between_a_batch_commit_and_its_spool_moves_loses_and_doubles_nothing(
    site: Path,
) -> None:
    """Two workers, batches committed by one writer: the daemon is killed with SIGKILL right
    after a batch's commit, before its replies and spool moves are all done (more messages in
    the database than files in processed/), then again at a random point; a restart finishes
    the rest. Every message is answered exactly once, every reply file holds exactly the bytes
    stored for it, and nothing is left in the spool."""
    config = site / "gateway.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[daemon]\n", "[daemon]\nworkers = 2\nbatch_size = 16\n"
        ),
        encoding="utf-8",
    )
    dropped = drop_claims(site, 120)
    caught_between = 0
    for attempt in range(3):
        daemon = start(site)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                committed, moved = committed_and_moved(site)
                if attempt < 2 and committed > moved + 1 and moved >= 5:
                    caught_between += 1
                    break
                if attempt == 2 and moved >= 60:
                    time.sleep(random.uniform(0.0, 0.05))
                    break
                time.sleep(0.002)
        finally:
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(timeout=30)
    assert caught_between >= 1, "a kill landed between a batch's commit and its spool moves"
    finished = gateway("run", "--config", "gateway.toml", "--once", cwd=site)
    assert finished.returncode == 0, finished.stderr[-3000:]

    spool = site / "var" / "spool"
    assert sorted(p.name.split("--", 1)[1] for p in (spool / "processed").iterdir()) == sorted(
        dropped
    )
    assert list((spool / "work").iterdir()) == []
    assert list((spool / "incoming").iterdir()) == []
    replies = replies_by_kind(site)
    expected = Counter(dropped.values())
    assert replies["apprec"] == expected, "every message answered by exactly one AppRec"
    assert replies["acknowledgment"] == expected, "and acknowledged exactly once"
    with sqlite3.connect(site / "var" / "gateway.sqlite3") as db:
        outcomes = dict(db.execute("SELECT outcome, COUNT(*) FROM received GROUP BY outcome"))
        stored = dict(db.execute("SELECT filename, body FROM replies WHERE state = 'delivered'"))
        pending = db.execute("SELECT COUNT(*) FROM replies WHERE state != 'delivered'").fetchone()
    assert outcomes == {"accepted": 120}
    assert pending == (0,)
    outbox = {p.name: p.read_bytes() for p in (site / "var" / "outbox").iterdir()}
    assert outbox == {name: bytes(body) for name, body in stored.items()}, "byte for byte"


def test_sigterm_stops_cleanly_and_unstarted_files_stay_in_incoming(site: Path) -> None:
    drop_claims(site, 5)
    daemon = start(site)
    try:
        wait_for(lambda: processed_count(site) >= 5, timeout=120)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0
    log = (site / "var" / "daemon.log").read_text()
    assert '"event": "stop_requested"' in log
    assert '"event": "stopped"' in log
    status = gateway("status", "--config", "gateway.toml", cwd=site)
    assert "accepted: 5" in status.stdout


def test_make_run_style_quick_start_processes_the_sample_claims(tmp_path: Path) -> None:
    """What `make run` does, minus the venv: keys, seeded samples, one pass over the spool."""
    project = Path(__file__).resolve().parents[1]
    samples = sorted((project / "fixtures" / "samples").glob("*"))
    if not samples:
        pytest.skip("fixtures/samples is empty")
    (tmp_path / "gateway.toml").write_text(CONFIG, encoding="utf-8")
    assert gateway("keys", "generate", "--config", "gateway.toml", cwd=tmp_path).returncode == 0
    incoming = tmp_path / "var" / "spool" / "incoming"
    incoming.mkdir(parents=True)
    for sample in samples:
        (incoming / sample.name).write_bytes(sample.read_bytes())
    result = gateway("run", "--config", "gateway.toml", "--once", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outbox = list((tmp_path / "var" / "outbox").iterdir())
    for sample in samples:
        stem = sample.name.rsplit(".", 1)[0]
        assert any(p.name.startswith(stem + ".apprec.") for p in outbox), sample.name
    assert os.listdir(incoming) == []


def test_tariffs_imported_while_running_apply_without_a_restart(site: Path) -> None:
    """No tariffs: the amount rules stand aside. Import them into the running daemon: the next
    claim with a wrong amount is rejected (FEIL_BELOP), and the log says the data was loaded."""
    config = site / "gateway.toml"
    config.write_text(
        CONFIG + '\n[practitioners]\n"8100001" = "tannlege"\n', encoding="utf-8"
    )
    project = Path(__file__).resolve().parents[1]
    incoming = site / "var" / "spool" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)

    def drop(name: str, seed: int) -> None:
        head, krav = make_claim(
            rng=random.Random(seed),
            practitioner="tannlege",
            bills=1,
            sender=default_sender("8100001"),
            receiver=default_receiver(),
            start=datetime(2026, 11, 2 + seed, 9, 0),
        )
        # Consistent in itself (Verdi x Antall = SumKrav), but not the tariff's amount: only
        # the tariff data can tell.
        bill = krav.regninger[0]
        first, *rest = bill.behandling.takster
        dearer = dataclasses.replace(first, verdi=first.verdi + 100)
        wrong = dataclasses.replace(
            bill,
            behandling=dataclasses.replace(
                bill.behandling,
                takster=(dearer, *rest),
                sum_refusjon=bill.behandling.sum_refusjon + 100 * first.antall,
            ),
        )
        krav = dataclasses.replace(
            krav, regninger=(wrong,), sum_krav_samlet=wrong.behandling.sum_refusjon
        )
        raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(seed))
        (incoming / f".{name}.tmp").write_bytes(raw)
        (incoming / f".{name}.tmp").rename(incoming / name)

    def status_of(stem: str) -> str:
        (path,) = (site / "var" / "outbox").glob(f"{stem}.apprec.*.eml")
        (part,) = mime.unwrap(path.read_bytes()).attachments
        status = read_apprec(part.body).find(f"{{{APPREC_NS}}}Status")
        assert status is not None
        return str(status.get("V"))

    daemon = start(site)
    try:
        drop("before.msg", 1)
        wait_for(lambda: processed_count(site) >= 1, timeout=60)
        assert status_of("before") == "1"  # no tariff data: the amount rules stand aside
        imported = gateway(
            "tariffs",
            "import",
            "--config",
            "gateway.toml",
            *(str(project / "fixtures" / "tariffs" / f) for f in TARIFF_FILES),
            cwd=site,
        )
        assert imported.returncode == 0, imported.stderr
        drop("after.msg", 2)
        wait_for(lambda: processed_count(site) >= 2, timeout=60)
        assert status_of("after") == "2"
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    log = (site / "var" / "daemon.log").read_text()
    assert '"event": "no_tariff_data"' in log and '"event": "tariffs_loaded"' in log
