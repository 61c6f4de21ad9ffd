"""`gateway payout`: a run writes one signed, schema-valid decision per receiver; paying twice
is impossible, and a resend writes identical bytes."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from gateway.cli import main
from gateway.pipeline import Pipeline
from gateway.practices.importing import import_file
from gateway.security.xmldsig import verify
from gateway.store import Store
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message
from gateway.validation.catalog import SchemaCatalog
from tests.conftest import database_table

NS = "{http://gateway.kuhr.no/xmlstds/utbetalingsvedtak/v1}"


REGISTRY = Path(__file__).resolve().parents[1] / "fixtures" / "practices" / "practices.csv"


def write_config(tmp_path: Path, store: Store, credentials: tuple[Path, Path]) -> Path:
    """A gateway config on the test store, with a [payout] section; the sample practice
    register is imported into the store."""
    import_file(store.practices, REGISTRY)
    key, cert = credentials
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[identity]
name = "HELFO test"
her_id = "79768"
enh_id = "889640782"
{database_table(store)}
[spool]
directory = "{tmp_path / "spool"}"
[outbox]
directory = "{tmp_path / "outbox"}"
[signing]
key_file = "{key}"
cert_file = "{cert}"
[payout]
payer_account = "86011117947"
payments_directory = "{tmp_path / "payments"}"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config(tmp_path: Path, store: Store, credentials: tuple[Path, Path]) -> Path:
    return write_config(tmp_path, store, credentials)


#: The senders ``fill`` and the tests use, known as psykolog (an unknown type is held).
PSYKOLOGER = dict.fromkeys(("8100001", "8100002", "8141253"), "psykolog")


def fill(pipeline: Pipeline) -> list[str]:
    patients: list[str] = []
    for i, her in enumerate(("8100001", "8100002", "8100001")):
        head, krav = make_claim(
            rng=random.Random(i),
            practitioner="psykolog",
            bills=3,
            sender=default_sender(her),
            receiver=default_receiver(),
            start=datetime(2026, 10, 5 + i, 9, 0),
        )
        patients += [b.patient.id for b in krav.regninger]
        raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(i))
        pipeline.handle(raw, source="spool", source_ref=f"r{i}", source_name=f"r{i}.msg")
    return patients


def test_run_pays_each_approved_bill_once_in_signed_valid_decisions(
    make_pipeline: Callable[..., Pipeline],
    config: Path,
    store: Store,
    credentials: tuple[Path, Path],
    catalog: SchemaCatalog,
    capsys: pytest.CaptureFixture[str],
) -> None:
    patients = fill(make_pipeline(practitioners=PSYKOLOGER))
    assert main(["payout", "preview", "--config", str(config)]) == 0
    assert "to 2 receiver(s)" in capsys.readouterr().out

    assert main(["payout", "run", "--key", "2026-11-23", "--config", str(config)]) == 0
    outbox = config.parent / "outbox" / "payout"
    files = sorted(outbox.glob("*.xml"))
    assert [f.name for f in files] == ["2026-11-23-8100001.xml", "2026-11-23-8100002.xml"]
    paid = Decimal("0")
    for path in files:
        data = path.read_bytes()
        assert catalog.validate_bytes(data).valid
        signed = verify(data, credentials[1].read_bytes())
        paid += Decimal(signed.findtext(f"{NS}Sum/{NS}Utbetalt") or "0")
        assert not any(p in data.decode() for p in patients)
    ((approved,),) = store.engine.rows(
        "SELECT SUM(approved_ore) FROM bill_status_effective WHERE status = 'godkjent'"
    )
    assert paid == Decimal(approved) / 100

    before = {p.name: p.read_bytes() for p in files}
    assert main(["payout", "run", "--key", "2026-11-23", "--config", str(config)]) == 0
    assert "already recorded" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in outbox.glob("*.xml")} == before
    assert main(["payout", "run", "--key", "2026-11-24", "--config", str(config)]) == 0
    assert "0 decision(s), 0 queued" in capsys.readouterr().out
    assert main(["payout", "resend", "1", "--config", str(config)]) == 0
    assert "2 decision(s) queued" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in outbox.glob("*.xml")} == before
    ((queued,),) = store.engine.rows(
        "SELECT COUNT(*) FROM replies WHERE kind = 'payout_decision' AND state = 'pending'"
    )
    assert queued == 4  # the run's 2 decisions, and the resend's 2 copies
    assert main(["payout", "list", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "2026-11-23" in listing and "done" in listing
    assert main(["payout", "show", "1", "--config", str(config)]) == 0
    shown = capsys.readouterr().out
    assert "decision 2026-11-23-8100002 to Byen psykologsenter" in shown
    assert "KID 810000100018" in shown
    assert (config.parent / "payments" / "2026-11-23.pain001.xml").is_file()
    assert main(["payout", "show", "99", "--config", str(config)]) == 1
    root = etree.fromstring(before["2026-11-23-8100002.xml"])
    assert root.findtext(f"{NS}Mottaker/{NS}Navn")


def test_preview_shows_held_receivers_with_the_reason(
    make_pipeline: Callable[..., Pipeline],
    config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipeline = make_pipeline(practitioners=PSYKOLOGER)
    fill(pipeline)
    head, krav = make_claim(
        rng=random.Random(7),
        practitioner="psykolog",
        bills=1,
        sender=default_sender("8141253"),  # in the register, without an account
        receiver=default_receiver(),
        start=datetime(2026, 10, 20, 9, 0),
    )
    raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(7))
    pipeline.handle(raw, source="spool", source_ref="held", source_name="held.msg")
    assert main(["payout", "preview", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "8141253 Speare AS" in out and "mangler kontonummer" in out
    assert "to 2 receiver(s); 1 receiver(s) held" in out
    assert main(["payout", "preview", "--receiver", "8100002", "--config", str(config)]) == 0
    only = capsys.readouterr().out
    assert "8100002" in only and "8100001" not in only and "8141253" not in only
    assert main(["payout", "run", "--key", "2026-11-23", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "held 8141253: 1 bill(s)" in out and "2 decision(s), 2 queued" in out
