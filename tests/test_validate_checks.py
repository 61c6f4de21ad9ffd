"""``gateway validate --decide`` and ``--verify-signatures``: the NHN-validator-like checks an EPJ
vendor runs, answered by the daemon's own code.

``--decide`` runs the daemon's pipeline on a copy of the database (nothing written) and prints
the AppRec it would send: a claim the daemon rejects is never reported as fine.
``--verify-signatures`` checks the signatures pinned (a certificate, a CPA) or not (the
certificate the signature carries), now or at signing time: the real 2023 sample verifies at its
GenDate and fails as expired today; tampered and expired is a tampering.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import structlog

from gateway.claims.model import Code
from gateway.cli import main
from gateway.config import Config
from gateway.errors import StorageError
from gateway.receipts.apprec import AppRec, AppRecStatus, serialize_apprec
from gateway.security import cms_signed
from gateway.security.xmldsig import Signer
from gateway.store import Database, Store
from gateway.store.database import open_read_only
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message
from gateway.validate_decide import Decider
from tests.conftest import IDENTITY, PG_DATABASE
from tests.support.postgres import PostgresServer
from tests.support.real_cpa import REAL_CPA

SAMPLE_MSGHEAD = "bkm-2006-12-20/samples/2023_08_29T12_56_58_328.p7m.deenveloped.ungz"
SAMPLE_MESSAGE = "ebxml-ebms2/samples/2023_08_29T12_56_58_328.msg"


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """``--decide`` configures logging to stderr as the daemon does (pytest's captured stream
    here): put structlog back afterwards, or later tests log into a closed file."""
    yield
    structlog.reset_defaults()


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text(
        "\n".join(
            [
                "[identity]",
                'name = "HELFO test"',
                'her_id = "79768"',
                "[database]",
                'path = "var/gateway.sqlite3"',
                "[spool]",
                'directory = "var/spool"',
                "[outbox]",
                'directory = "var/outbox"',
                "[signing]",
                'key_file = "var/keys/key.pem"',
                'cert_file = "var/keys/cert.pem"',
                "[logging]",
                'level = "warning"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    assert main(["keys", "generate", "--config", str(config)]) == 0
    return config


def claim(seed: int, *, future_bill: bool = False) -> bytes:
    head, krav = make_claim(
        rng=random.Random(seed),
        practitioner="psykolog",
        bills=2,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime.now().replace(microsecond=0) - timedelta(days=20),
    )
    if future_bill:
        bills = list(krav.regninger)
        later = datetime.now().replace(microsecond=0) + timedelta(days=30)
        bills[1] = dataclasses.replace(bills[1], dato_tid=later)
        krav = dataclasses.replace(krav, regninger=tuple(bills))
    return ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(seed))


# --- --decide -----------------------------------------------------------------------------------


def test_decide_prints_the_apprec_and_a_rejected_bill_is_not_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    good, partly = tmp_path / "good.msg", tmp_path / "partly.msg"
    good.write_bytes(claim(1))
    partly.write_bytes(claim(2, future_bill=True))
    # Schema-valid, both: plain validation calls them fine.
    assert main(["validate", "--config", str(config), str(good), str(partly)]) == 0
    capsys.readouterr()

    # The daemon's database as it stands: the decisions must not change it.
    database = tmp_path / "var" / "gateway.sqlite3"
    Store(database).close()
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    assert main(["validate", "--config", str(config), "--decide", str(good)]) == 0
    out = capsys.readouterr().out
    assert "decision: accepted, AppRec status 1" in out
    assert "<AppRec" in out and 'V="1"' in out

    assert main(["validate", "--config", str(config), "--decide", "--json", str(partly)]) == 1
    (report,) = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "invalid"
    decision = report["decision"]
    assert (decision["outcome"], decision["apprec_status"]) == ("partially_accepted", 3)
    assert decision["replies"] == ["acknowledgment", "apprec"]
    errors = decision["errors"]
    assert errors and all(e["OT"] and (e["V"] or "").isdigit() for e in errors)
    assert "766" in {e["V"] for e in errors}

    assert hashlib.sha256(database.read_bytes()).hexdigest() == before, "--decide wrote"
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM received").fetchone()[0] == 0


def test_decide_reads_the_old_practitioners_config_as_the_daemon_does(tmp_path: Path) -> None:
    """A database no register was imported into yet: as at the daemon's start, the old
    ``[practitioners]`` table becomes the register, in the copy only."""
    config = write_config(tmp_path)
    with config.open("a", encoding="utf-8") as fh:
        fh.write('[practitioners]\n"8141253" = "tannlege"\n')
    database = tmp_path / "var" / "gateway.sqlite3"
    Store(database).close()
    with Decider(Config.from_toml(config)) as decider:
        assert decider.pipeline is not None
        practice = decider.pipeline.practices.current().best("8141253", date.today())
        assert practice is not None and practice.practice_type == "tannlege"
    store = Store(database)
    try:
        assert store.practices.current() is None  # the real database: nothing imported
    finally:
        store.close()


def test_decide_needs_the_config(tmp_path: Path) -> None:
    message = tmp_path / "claim.msg"
    message.write_bytes(claim(3))
    assert main(["validate", "--decide", str(message)]) == 78


# --- --verify-signatures ------------------------------------------------------------------------


def test_the_real_samples_signature_verifies_at_its_gendate_and_is_expired_today(
    standards: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = str(standards / SAMPLE_MSGHEAD)
    args = ["validate", "--json", "--verify-signatures"]
    assert main([*args, "--at", "signing-time", sample]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    (check,) = report["signatures"]
    assert (check["signature"], check["outcome"], check["pinned"]) == ("MsgHead", "verified", False)
    assert check["at"].startswith("2023-08-29T10:56:50")
    assert "not pinned" in check["detail"]

    assert main([*args, sample]) == 1
    (report,) = json.loads(capsys.readouterr().out)
    (check,) = report["signatures"]
    assert check["outcome"] == "failed" and "utløpt" in check["detail"]


def test_a_tampered_sample_is_a_tampering_even_when_expired(
    standards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = (standards / SAMPLE_MSGHEAD).read_bytes()
    tampered = tmp_path / "tampered.xml"
    assert "Tønsberg".encode() in data
    tampered.write_bytes(data.replace("Tønsberg".encode(), "Tromsø".encode(), 1))
    assert main(["validate", "--json", "--verify-signatures", str(tampered)]) == 1
    (report,) = json.loads(capsys.readouterr().out)
    (check,) = report["signatures"]
    assert check["outcome"] == "failed" and "endret etter" in check["detail"]


def test_the_real_message_verifies_unpinned_and_fails_pinned_to_the_newer_cpa(
    standards: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = str(standards / SAMPLE_MESSAGE)
    args = ["validate", "--json", "--verify-signatures", "--at", "signing-time"]
    main([*args, message])
    (report,) = json.loads(capsys.readouterr().out)
    envelope, payload = report["signatures"]
    assert (envelope["signature"], envelope["outcome"], envelope["pinned"]) == (
        "ebXML envelope",
        "verified",
        False,
    )
    # Encrypted to NAV: without its key the MsgHead inside cannot be opened here.
    assert (payload["signature"], payload["outcome"]) == ("MsgHead", "not checked")
    # The real CPA is of 2025 and names the partner's newer certificate: pinned to it, the
    # 2023 message was signed by another key (a signature failure, not a date problem).
    main([*args, "--cpa", str(standards / REAL_CPA), message])
    (report,) = json.loads(capsys.readouterr().out)
    envelope = report["signatures"][0]
    assert (envelope["outcome"], envelope["pinned"]) == ("failed", True)
    assert "signert med" in envelope["detail"]


def test_pinned_to_another_certificate_the_sample_fails(
    standards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(tmp_path)
    capsys.readouterr()
    ours = tmp_path / "var" / "keys" / "cert.pem"
    sample = str(standards / SAMPLE_MSGHEAD)
    args = ["validate", "--json", "--verify-signatures", "--at", "signing-time"]
    assert main([*args, "--cert", str(ours), sample]) == 1
    (report,) = json.loads(capsys.readouterr().out)
    (check,) = report["signatures"]
    assert check["outcome"] == "failed" and check["pinned"]


def test_a_bare_apprec_file_is_checked_against_the_signature_beside_it(
    signer: Signer,
    credentials: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The spool's answer to a bare MsgHead: the AppRec file and ``<file>.p7s`` (as
    ``Replier`` writes them: ``serialize_apprec`` and ``cms_signed.sign``)."""
    apprec = tmp_path / "claim.apprec.1.xml"
    document = serialize_apprec(
        AppRec(
            id="a-1",
            gen_date=datetime(2026, 10, 1, 12, 0),
            sender=IDENTITY.organisation(),
            receiver=default_sender(),
            status=AppRecStatus.OK,
            errors=(),
            original_msg_type=Code("BEHANDLERKRAV", text="Behandlerkrav"),
            original_issue_date=datetime(2026, 10, 1, 11, 0),
            original_msg_id="m-1",
        )
    )
    apprec.write_bytes(document)
    signature = Path(str(apprec) + cms_signed.SIGNATURE_SUFFIX)
    signature.write_bytes(cms_signed.sign(document, signer.key, signer.certificate))
    args = ["validate", "--json", "--verify-signatures"]

    def check(*extra: str) -> dict[str, Any]:
        main([*args, *extra, str(apprec)])
        (report,) = json.loads(capsys.readouterr().out)
        (found,) = report["signatures"]
        return dict(found)

    pinned = check("--cert", str(credentials[1]))
    assert (pinned["outcome"], pinned["pinned"]) == ("verified", True)
    unpinned = check()
    assert (unpinned["outcome"], unpinned["pinned"]) == ("verified", False)
    assert "not pinned" in unpinned["detail"]
    apprec.write_bytes(document.replace(b'V="1"', b'V="2"', 1))
    assert check("--cert", str(credentials[1]))["outcome"] == "failed"
    signature.unlink()
    assert check()["outcome"] == "unsigned"


@pytest.mark.postgres
@pytest.mark.integration
def test_decide_on_postgresql_reads_the_database_itself_read_only(
    tmp_path: Path, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_server.create_schema(PG_DATABASE, "decide")
    try:
        config = write_config(tmp_path)
        text = config.read_text(encoding="utf-8")
        config.write_text(
            text.replace('path = "var/gateway.sqlite3"', f'url = "{url}"'), encoding="utf-8"
        )
        good = tmp_path / "good.msg"
        good.write_bytes(claim(1))
        Store(Database(url=url)).close()  # the daemon made it
        assert main(["validate", "--config", str(config), "--decide", str(good)]) == 0
        assert "decision: accepted, AppRec status 1" in capsys.readouterr().out
        store = Store(Database(url=url))
        try:
            assert store.engine.rows("SELECT COUNT(*) FROM received") == [(0,)]
        finally:
            store.close()

        # The server refuses every write of the read-only engine ...
        engine = open_read_only(Database(url=url))
        try:
            with (
                pytest.raises(StorageError, match="read-only"),
                engine.transaction("a write") as tx,
            ):
                tx.execute("DELETE FROM received")
        finally:
            engine.close()
        # ... and it takes the schema only as this gateway made it.
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("UPDATE schema_version SET version = version - 1")
        with pytest.raises(StorageError, match="read-only look needs the same version"):
            open_read_only(Database(url=url))
    finally:
        postgres_server.drop_schema(PG_DATABASE, "decide")
