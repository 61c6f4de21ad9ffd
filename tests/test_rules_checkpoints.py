"""DL-004 (merknad 458), TAR-012 (1bd at 23:59) and ELIG-001 (treatment before referral)."""

from __future__ import annotations

import dataclasses
import random
from datetime import date, datetime

from gateway.claims.model import BehandlerKrav, Code, Enkeltregning, Takst
from gateway.rules.base import ClaimContext, Severity
from gateway.rules.engine import BillStatus, Evaluation, RuleEngine
from gateway.rules.registry import RULES
from gateway.testing.claims import default_receiver, default_sender, make_bill, make_claim
from gateway.testing.history import MemoryHistory

RECEIVED = datetime(2026, 11, 23, 12, 0)


def evaluate(bill: Enkeltregning, practitioner: str | None = None) -> Evaluation:
    head, _ = make_claim(
        rng=random.Random(1),
        practitioner="lege",
        bills=1,
        sender=default_sender(),
        receiver=default_receiver(),
        start=bill.dato_tid,
    )
    krav = BehandlerKrav("t", "1", (bill,), 1, bill.behandling.sum_refusjon)
    ctx = ClaimContext(
        head=head,
        krav=krav,
        sender_her="8141253",
        received_at=RECEIVED,
        history=MemoryHistory(),
        practitioner=practitioner,
        practitioner_id="8141253",
    )
    return RuleEngine(RULES).evaluate(ctx)


def bill(dato_tid: datetime, *, paid: bool = True, kode: Code | None = None) -> Enkeltregning:
    made = make_bill(
        rng=random.Random(2), practitioner="psykolog", dato_tid=dato_tid, regning_nr="10"
    )
    return dataclasses.replace(
        made,
        betalt_egenandel=paid,
        behandling=dataclasses.replace(made.behandling, kode_egenandel=kode, henvisnings_dato=None),
    )


def codes(evaluation: Evaluation) -> list[str]:
    return [f.code for b in evaluation.bills for f in b.findings]


def test_458_warns_when_an_egenandel_is_reported_after_14_days_without_refusing() -> None:
    late = evaluate(bill(datetime(2026, 11, 1, 9, 0)), practitioner="psykolog")
    assert codes(late) == ["458"]
    (finding,) = late.bills[0].findings
    assert finding.severity is Severity.WARNING and "22 dager" in finding.text
    assert late.bills[0].status is BillStatus.GODKJENT
    psykolog = "psykolog"
    assert codes(evaluate(bill(datetime(2026, 11, 9, 9, 0)), psykolog)) == []
    assert codes(evaluate(bill(datetime(2026, 11, 1, 9, 0), paid=False), psykolog)) == []
    assert codes(evaluate(bill(datetime(2026, 11, 1, 9, 0), kode=Code("F")), psykolog)) == []


def test_1bd_at_2359_goes_to_manual_control_and_is_still_approved() -> None:
    made = make_bill(
        rng=random.Random(3),
        practitioner="lege",
        dato_tid=datetime(2026, 11, 20, 23, 59),
        regning_nr="20",
    )
    contact = dataclasses.replace(
        made,
        behandling=dataclasses.replace(
            made.behandling,
            takster=(Takst("1bd", made.behandling.takster[0].verdi, 1),),
            sum_refusjon=made.behandling.takster[0].verdi,
        ),
    )
    result = evaluate(contact, practitioner="lege")
    decision = result.bills[0]
    assert [f.code for f in decision.findings if f.code == "1BD_2359"] == ["1BD_2359"]
    assert decision.manual
    assert evaluate(contact, practitioner="psykolog").bills[0].manual is False


def test_treatment_before_the_referral_date_is_rejected() -> None:
    start = datetime(2026, 11, 2, 10, 0)
    early = dataclasses.replace(
        bill(start),
        behandling=dataclasses.replace(bill(start).behandling, henvisnings_dato=date(2026, 11, 5)),
    )
    result = evaluate(early)
    assert result.bills[0].status is BillStatus.AVVIST
    finding = next(f for f in result.bills[0].findings if f.code == "HENVISNING_ETTER_START")
    assert "2026-11-05" in finding.text and "2026-11-02" in finding.text
    same_day = dataclasses.replace(
        early,
        behandling=dataclasses.replace(early.behandling, henvisnings_dato=date(2026, 11, 2)),
    )
    assert "HENVISNING_ETTER_START" not in codes(evaluate(same_day))
