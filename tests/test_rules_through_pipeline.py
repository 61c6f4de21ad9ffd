"""The rule families through the whole pipeline, with the bundled tariff data and a practice
registry: what a sender gets back, what the store keeps, and what a case worker can change."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from lxml import etree

from gateway.casework import override
from gateway.casework.lookup import resolve_bill
from gateway.claims.model import BehandlerKrav, Enkeltregning, MsgHead, Takst
from gateway.ebxml import mime
from gateway.ebxml.namespaces import APPREC_NS
from gateway.pipeline import Pipeline
from gateway.receipts.apprec import read_apprec
from gateway.records import Outcome
from gateway.rules.codes import shipped_code_list
from gateway.store import Store
from gateway.tariffs.model import TariffBook
from gateway.testing.claims import (
    default_receiver,
    default_sender,
    make_bill,
    make_claim,
    msghead_with_bkm,
)
from gateway.testing.messages import ebxml_message

AR = {"ar": APPREC_NS}
SENDERS = {"tannlege": "8100001", "lege": "8100002", "psykolog": "8100003", "lab": "8100004"}
REGISTRY = {her: kind for kind, her in SENDERS.items()}


def claim(kind: str, seed: int, bills: int) -> tuple[MsgHead, BehandlerKrav]:
    # One working day per seed: the same practitioner cannot start two bills at the same time.
    return make_claim(
        rng=random.Random(seed),
        practitioner=kind,  # type: ignore[arg-type]
        bills=bills,
        sender=default_sender(SENDERS[kind]),
        receiver=default_receiver(),
        start=datetime(2026, 9, 1, 8, 0) + timedelta(days=seed),
    )


def send(pipeline: Pipeline, head: MsgHead, krav: BehandlerKrav, ref: str) -> etree._Element:
    raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(hash(ref) & 0xFFFF))
    pipeline.handle(raw, source="spool", source_ref=ref, source_name=f"{ref}.msg")
    reply = [r for r in pipeline.store.outbox.pending_replies() if ".apprec." in r.filename][-1]
    (part,) = mime.unwrap(reply.body).attachments
    return read_apprec(part.body)


def code(mnemonic: str) -> str:
    """The number a rule's code has in the shipped code list (``Error/@V``)."""
    return shipped_code_list().merknad(mnemonic).value


@pytest.fixture
def pipeline(
    make_pipeline: Callable[..., Pipeline], bundled_tariffs: TariffBook
) -> Pipeline:
    return make_pipeline(tariffs=bundled_tariffs, practitioners=REGISTRY)


@pytest.mark.parametrize("kind", sorted(SENDERS))
def test_generated_claims_of_every_kind_pass_every_rule(pipeline: Pipeline, kind: str) -> None:
    for seed in range(6):
        head, krav = claim(kind, seed, bills=8)
        apprec = send(pipeline, head, krav, f"{kind}-{seed}")
        errors = [(e.get("V"), e.get("DN")) for e in apprec.findall("ar:Error", AR)]
        assert apprec.find("ar:Status", AR).get("V") == "1", errors  # type: ignore[union-attr]


def test_the_issues_dental_example_rejects_the_later_bill_naming_the_earlier(
    pipeline: Pipeline, store: Store
) -> None:
    rng = random.Random(5)
    first = make_bill(
        rng=rng, practitioner="tannlege", dato_tid=datetime(2026, 10, 6, 12, 0), regning_nr="700"
    )
    first = dataclasses.replace(
        first,
        behandling=dataclasses.replace(
            first.behandling,
            kode_egenandel=None,
            takster=(Takst("501", Decimal("480.00"), 1),),
            sum_refusjon=Decimal("480.00"),
        ),
    )
    second = dataclasses.replace(
        first,
        guid="{second}",
        regning_nr="701",
        dato_tid=datetime(2026, 10, 6, 12, 20),
        behandling=dataclasses.replace(
            first.behandling,
            takster=(Takst("502", Decimal("480.00"), 1), Takst("6", Decimal("60.00"), 1)),
            sum_refusjon=Decimal("540.00"),
        ),
    )
    head, _ = claim("tannlege", 1, bills=1)
    krav = BehandlerKrav("test", "1", (first, second), 2, Decimal("1020.00"))
    apprec = send(pipeline, head, krav, "dental")
    assert apprec.find("ar:Status", AR).get("V") == "3"  # type: ignore[union-attr]
    errors = apprec.findall("ar:Error", AR)
    assert [(e.get("V"), e.get("OT")) for e in errors] == [(code("TIDSKONFLIKT"), "701")]
    assert "700" in (errors[0].get("DN") or ""), errors[0].get("DN")
    rows = store.engine.rows("SELECT regning_nr, status, approved_ore FROM bills ORDER BY id")
    assert rows == [("700", "godkjent", 48000), ("701", "avvist", 0)]


def test_a_lab_bill_with_a_wrong_amount_is_rejected_with_expected_and_claimed(
    pipeline: Pipeline,
) -> None:
    head, krav = claim("lab", 3, bills=2)
    bill: Enkeltregning = krav.regninger[0]
    takst = bill.behandling.takster[0]
    wrong = dataclasses.replace(takst, verdi=takst.verdi + Decimal("1.00"))
    changed = dataclasses.replace(
        bill,
        behandling=dataclasses.replace(
            bill.behandling,
            takster=(wrong, *bill.behandling.takster[1:]),
            sum_refusjon=bill.behandling.sum_refusjon + wrong.antall,
        ),
    )
    bills = (changed, *krav.regninger[1:])
    krav = dataclasses.replace(
        krav,
        regninger=bills,
        sum_krav_samlet=sum((b.behandling.sum_refusjon for b in bills), Decimal("0")),
    )
    apprec = send(pipeline, head, krav, "lab")
    (error,) = apprec.findall("ar:Error", AR)
    assert (error.get("V"), error.get("OT")) == (code("NLK_BELOP"), bill.regning_nr)
    assert takst.kode in (error.get("DN") or "")


def test_an_override_counts_in_the_history_the_rules_read(
    pipeline: Pipeline, store: Store
) -> None:
    head, krav = claim("psykolog", 4, bills=1)
    assert send(pipeline, head, krav, "first").find("ar:Status", AR).get("V") == "1"  # type: ignore[union-attr]
    again = dataclasses.replace(head, msg_id="again")
    apprec = send(pipeline, again, krav, "again")
    assert apprec.find("ar:Error", AR).get("V") == code("DUPLIKAT")  # type: ignore[union-attr]

    approved = resolve_bill(store, "1")  # the first message's bill (the Guid is now ambiguous)
    assert approved.status == "godkjent"
    override(store, approved, decision="avvist", reason="feilregistrert", by="saksbehandler")
    third = dataclasses.replace(head, msg_id="third")
    apprec = send(pipeline, third, krav, "third")
    assert apprec.find("ar:Status", AR).get("V") == "1"  # type: ignore[union-attr]
    statuses = store.engine.rows("SELECT status FROM bill_status_effective ORDER BY bill_id")
    assert statuses == [("avvist",), ("avvist",), ("godkjent",)]


def test_outcome_is_stored_with_ruleset_version_and_inputs(
    pipeline: Pipeline, store: Store
) -> None:
    head, krav = claim("lege", 9, bills=2)
    no_diagnosis = dataclasses.replace(
        krav.regninger[0],
        behandling=dataclasses.replace(krav.regninger[0].behandling, diagnoser=()),
    )
    krav = dataclasses.replace(krav, regninger=(no_diagnosis, krav.regninger[1]))
    send(pipeline, head, krav, "lege")
    ((version,),) = store.engine.rows("SELECT ruleset_version FROM messages")
    finding = store.engine.one(
        "SELECT rule_id, code, facts FROM findings WHERE severity = 'reject_bill'"
    )
    assert finding is not None
    assert version == pipeline.engine.version
    assert finding[1] == "MANGLER_DIAGNOSE" and finding[2].startswith("{")
    assert pipeline.store.messages.counts()[Outcome.PARTIALLY_ACCEPTED.value] == 1


def test_a_bill_sent_to_manual_control_is_stored_as_such(
    pipeline: Pipeline, store: Store
) -> None:
    head, krav = claim("lege", 11, bills=1)
    bill = krav.regninger[0]
    at_midnight = dataclasses.replace(
        bill,
        dato_tid=bill.dato_tid.replace(hour=23, minute=59),
        behandling=dataclasses.replace(
            bill.behandling,
            takster=(Takst("1bd", Decimal("72.00"), 1),),
            sum_refusjon=Decimal("72.00"),
        ),
    )
    krav = dataclasses.replace(krav, regninger=(at_midnight,), sum_krav_samlet=Decimal("72.00"))
    apprec = send(pipeline, head, krav, "midnight")
    assert apprec.find("ar:Status", AR).get("V") == "1"  # type: ignore[union-attr]
    assert store.engine.rows("SELECT status, manual FROM bills") == [("godkjent", 1)]


def test_statistics_fields_are_stored_with_each_bill(pipeline: Pipeline, store: Store) -> None:
    from gateway.claims.persons import birth_date, is_female

    head, krav = claim("psykolog", 12, bills=2)
    send(pipeline, head, krav, "stats")
    rows = store.engine.rows(
        "SELECT patient_id, patient_birth_date, patient_sex, practitioner_type FROM bills "
        "ORDER BY id"
    )
    for patient_id, born, sex, kind in rows:
        expected = birth_date(patient_id)
        assert expected is not None and born == expected.isoformat()
        assert sex == ("K" if is_female(patient_id) else "M")
        assert kind == "psykolog"
