"""TYPE-001: a sender of unknown practitioner type is never approved unchecked (issue 12).

The type-dependent rules still stand aside (they cannot judge the bill), but every bill goes to
manual control, and the payout ledger holds it until a case worker has decided.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest

from gateway.casework.overrides import override
from gateway.claims.model import Enkeltregning, Takst
from gateway.ebxml import mime
from gateway.payout import ledger
from gateway.pipeline import Pipeline
from gateway.receipts.apprec import APPREC_NS, read_apprec
from gateway.rules.base import Severity
from gateway.rules.engine import BillStatus, Evaluation, RuleEngine
from gateway.rules.registry import RULES
from gateway.rules.unknown_practitioner import UNKNOWN_PRACTITIONER
from gateway.store import Store
from gateway.tariffs.model import TariffBook
from gateway.testing.claims import default_receiver, default_sender, make_bill, make_claim
from gateway.testing.history import context
from tests.test_payout_ledger import bill_rows, lines_of, send, stored

HER = "8141253"
RECEIVED = datetime(2026, 11, 23, 12, 0)


def bill(seed: int = 1, **changes: object) -> Enkeltregning:
    made = make_bill(
        rng=random.Random(seed),
        practitioner="lege",
        dato_tid=datetime(2026, 11, 2, 9, 0),
        regning_nr=str(100 + seed),
    )
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]


def evaluate(
    *bills: Enkeltregning, practitioner: str | None, tariffs: TariffBook | None = None
) -> Evaluation:
    head, _ = make_claim(
        rng=random.Random(0),
        practitioner="lege",
        bills=1,
        sender=default_sender(HER),
        receiver=default_receiver(),
        start=bills[0].dato_tid,
    )
    extra = {} if tariffs is None else {"tariffs": tariffs}
    ctx = context(
        *bills,
        head=head,
        sender_her=HER,
        received_at=RECEIVED,
        practitioner=practitioner,
        practitioner_id=HER,
        **extra,  # type: ignore[arg-type]
    )
    return RuleEngine(RULES).evaluate(ctx)


def test_a_bill_of_an_unknown_type_goes_to_manual_control_with_its_own_code_and_text() -> None:
    (decision,) = evaluate(bill(), practitioner=None).bills
    assert decision.status is BillStatus.GODKJENT and decision.manual
    (finding,) = decision.findings
    assert (finding.rule_id, finding.code) == ("TYPE-001", "UKJENT_BEHANDLERTYPE")
    assert finding.severity is Severity.MANUAL
    assert HER in finding.text and "kontrolleres manuelt" in finding.text


@pytest.mark.parametrize("practitioner", ["lege", "psykolog", "tannlege", "lab"])
def test_a_known_type_is_not_held_by_this_rule(practitioner: str) -> None:
    result = evaluate(bill(), practitioner=practitioner)
    assert "TYPE-001" not in {f.rule_id for b in result.bills for f in b.findings}


def test_a_credit_is_left_alone() -> None:
    (decision,) = evaluate(bill(kreditering=True), practitioner=None).bills
    assert "TYPE-001" not in {f.rule_id for f in decision.findings}


def test_the_tariff_and_amount_rules_stand_aside_but_nothing_is_approved_plainly(
    bundled_tariffs: TariffBook,
) -> None:
    # An unknown takst and a placeholder amount far above the lines: TAR-001 and AMT-004
    # would reject this for a known lege; for an unknown type they cannot judge it.
    placeholder = bill(
        behandling=dataclasses.replace(
            bill().behandling,
            takster=(Takst("zz99", Decimal("1.00"), 1),),
            sum_refusjon=Decimal("99999.00"),
        )
    )
    known = evaluate(placeholder, practitioner="lege", tariffs=bundled_tariffs)
    assert known.bills[0].status is BillStatus.AVVIST

    (decision,) = evaluate(placeholder, practitioner=None, tariffs=bundled_tariffs).bills
    assert [f.rule_id for f in decision.findings] == ["TYPE-001"]
    assert decision.status is BillStatus.GODKJENT
    assert decision.manual  # held, not plain OK
    assert decision.approved_amount == Decimal("99999.00")  # what a case worker must look at


def test_the_rule_is_registered_as_a_general_rule() -> None:
    assert UNKNOWN_PRACTITIONER in RULES
    assert UNKNOWN_PRACTITIONER.practitioners is None and UNKNOWN_PRACTITIONER.codes is None


def test_bills_of_an_unknown_type_are_held_from_payout_until_a_case_worker_decides(
    make_pipeline: Callable[..., Pipeline], store: Store
) -> None:
    head, krav = make_claim(
        rng=random.Random(3),
        practitioner="lege",
        bills=2,
        sender=default_sender(HER),  # no TypeHealthcareProfessional, no [practitioners] entry
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 9, 0),
    )
    pipeline = make_pipeline()
    send(pipeline, head, krav, "unknown-type")
    # Today's answer to the sender: AppRec status 1 without Error (manual control is not a
    # refusal, and KITH allows Error only with status 2 or 3); the hold is on our side.
    reply = [r for r in store.outbox.pending_replies() if ".apprec." in r.filename][-1]
    (part,) = mime.unwrap(reply.body).attachments
    apprec = read_apprec(part.body)
    assert apprec.find(f"{{{APPREC_NS}}}Status").get("V") == "1"  # type: ignore[union-attr]
    assert apprec.find(f"{{{APPREC_NS}}}Error") is None
    rows = bill_rows(store.engine)
    assert [(r[2], r[5]) for r in rows] == [("godkjent", 1), ("godkjent", 1)]  # manual

    assert ledger.run(store.engine, "2026-11-23").per_receiver == {}
    first, second = (stored(store, r) for r in krav.regninger)
    assert lines_of(store.engine, first.id) == [] and lines_of(store.engine, second.id) == []

    override(store, first, decision="godkjent", reason="Behandlertype kontrollert", by="Kari")
    assert ledger.run(store.engine, "2026-11-24").per_receiver == {HER: first.effective_ore}
    assert lines_of(store.engine, second.id) == []  # still held
