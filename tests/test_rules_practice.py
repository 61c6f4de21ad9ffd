"""The practice register in the rules: who may be refunded, on which date, under which agreement;
egenandel-only senders; known types without tariff data; and the register through the pipeline
(the practice type it gives is the one the rules and the store use)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

import pytest

from gateway.claims.model import Enkeltregning, Takst
from gateway.pipeline import Pipeline
from gateway.practices.loading import register_from_file
from gateway.practices.model import Period, Practice, PracticeRegister
from gateway.practices.senders import sender_of
from gateway.rules import practice
from gateway.rules.base import Severity
from gateway.rules.engine import BillStatus, Evaluation, RuleEngine
from gateway.rules.registry import RULES
from gateway.store import Store
from gateway.tariffs.model import EMPTY_BOOK, TariffBook
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.history import acting_codes, context, enkeltregning, msghead
from gateway.testing.messages import ebxml_message
from tests.conftest import FIXTURES_DIR

SAMPLE = FIXTURES_DIR / "practices" / "practices.csv"
RECEIVED = datetime(2026, 11, 23, 12, 0)
DAY = datetime(2026, 11, 2, 10, 0)
PATIENT = "01017012345"
ENGINE = RuleEngine(practice.RULES)


def row(her: str, kind: str = "fastlege", **changes: object) -> Practice:
    base = Practice(
        her_id=her,
        name=f"Praksis {her}",
        practice_type=kind,
        valid=Period(date(2010, 1, 1)),
        direct_settlement=Period(date(2010, 1, 1)),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def register(*rows: Practice) -> PracticeRegister:
    return PracticeRegister.build("test", rows)


def bill(*takster: Takst, at: datetime = DAY, **changes: object) -> Enkeltregning:
    made = enkeltregning(
        takster or (Takst("2ad", Decimal("175.00"), 1),),
        guid="g1",
        regning_nr="1",
        dato_tid=at,
        patient=PATIENT,
    )
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]


def evaluate(
    *bills: Enkeltregning,
    practices: PracticeRegister,
    sender: str = "100",
    practitioner: str | None = "lege",
    tariffs: TariffBook = EMPTY_BOOK,
    engine: RuleEngine = ENGINE,
) -> Evaluation:
    ctx = context(
        *bills,
        head=msghead(sender, RECEIVED),
        sender_her=sender,
        received_at=RECEIVED,
        tariffs=tariffs,
        practitioner=practitioner,
        practitioner_id=sender,
    )
    found = practices.best(sender, RECEIVED.date())
    return engine.evaluate(dataclasses.replace(ctx, practices=practices, practice=found))


def codes(result: Evaluation) -> list[list[str]]:
    return acting_codes(result)


def test_the_family_is_registered_with_its_codes() -> None:
    assert [r.id for r in practice.RULES] == [f"PRAC-{i:03d}" for i in range(1, 9)]
    for rule in practice.RULES:
        assert rule in RULES and rule.basis and rule.guidance


def test_without_a_register_the_register_rules_stand_aside() -> None:
    empty = register()
    assert codes(evaluate(bill(), practices=empty, sender="999")) == [[]]


def test_a_registered_practice_with_an_agreement_passes() -> None:
    assert codes(evaluate(bill(), practices=register(row("100")))) == [[]]


def test_an_unknown_sender_is_refused_while_a_register_is_in_force() -> None:
    result = evaluate(bill(), practices=register(row("100")), sender="555")
    assert codes(result) == [["UKJENT_PRAKSIS"]]
    assert "555" in result.bills[0].findings[0].text


def test_the_practice_must_be_registered_on_the_treatment_date() -> None:
    closed = row("100", valid=Period(date(2010, 1, 1), date(2025, 12, 31)))
    result = evaluate(bill(), practices=register(closed))
    assert codes(result) == [["PRAKSIS_IKKE_GYLDIG"]]
    assert "02.11.2026" in result.bills[0].findings[0].text
    assert "01.01.2010–31.12.2025" in result.bills[0].findings[0].text
    assert codes(evaluate(bill(at=datetime(2025, 12, 31, 9)), practices=register(closed))) == [
        []
    ]


def test_a_refund_needs_a_direct_settlement_agreement_valid_on_the_treatment_date() -> None:
    ended = row("100", direct_settlement=Period(date(2010, 1, 1), date(2022, 12, 31)))
    result = evaluate(bill(), practices=register(ended))
    assert codes(result) == [["MANGLER_DIREKTE_OPPGJOR"]]
    (finding,) = result.bills[0].findings
    assert finding.rule_id == "PRAC-003" and finding.severity is Severity.REJECT_BILL
    assert "01.01.2010–31.12.2022" in finding.text
    earlier = bill(at=datetime(2022, 12, 31, 9))
    assert codes(evaluate(earlier, practices=register(ended))) == [[]]
    never = row("100", direct_settlement=None)
    assert codes(evaluate(bill(), practices=register(never))) == [["MANGLER_DIREKTE_OPPGJOR"]]


def test_a_bill_of_zeros_reports_egenandel_only_and_needs_no_agreement() -> None:
    zero = bill(Takst("1", Decimal("0.00"), 1))
    never = row("100", "tannlege", direct_settlement=None)
    assert codes(evaluate(zero, practices=register(never), practitioner="tannlege")) == [[]]


def test_credits_are_left_alone() -> None:
    never = row("100", direct_settlement=None)
    credit = bill(kreditering=True)
    assert codes(evaluate(credit, practices=register(never), sender="100")) == [[]]
    assert codes(evaluate(credit, practices=register(never), sender="555")) == [[]]


def test_a_physiotherapist_needs_a_driftsavtale() -> None:
    takst = Takst("A1a", Decimal("136.00"), 1)
    without = row("100", "fysioterapeut")
    result = evaluate(bill(takst), practices=register(without), practitioner="fysioterapeut")
    assert codes(result) == [["MANGLER_DRIFTSAVTALE"]]
    with_one = row("100", "fysioterapeut", operating_agreement=Period(date(2014, 1, 1)))
    ok = evaluate(bill(takst), practices=register(with_one), practitioner="fysioterapeut")
    assert codes(ok) == [[]]


def test_surgery_takster_need_an_operating_agreement() -> None:
    surgery = Takst("K01a", Decimal("6774.00"), 1)
    gp = row("100", "fastlege")
    result = evaluate(bill(surgery), practices=register(gp))
    assert codes(result) == [["K_TAKST_DRIFTSAVTALE"]]
    assert "K01a" in result.bills[0].findings[0].text
    specialist = row(
        "100",
        "spesialistlege",
        specialties=("oyesykdommer",),
        operating_agreement=Period(date(2015, 1, 1)),
    )
    assert codes(evaluate(bill(surgery), practices=register(specialist))) == [[]]
    # a chiropractor's K1 is no surgery takst, and the rule is the doctors' only
    chiro = row("100", "kiropraktor")
    k1 = bill(Takst("K1", Decimal("139.00"), 1))
    assert codes(evaluate(k1, practices=register(chiro), practitioner="kiropraktor")) == [[]]


def test_601_is_for_neurologists() -> None:
    takst = Takst("601", Decimal("400.00"), 1)
    internist = row("100", "spesialistlege", specialties=("indremedisin",))
    result = evaluate(bill(takst), practices=register(internist))
    assert codes(result) == [["SPESIALITET_TAKST"]]
    assert "nevrologi" in result.bills[0].findings[0].text
    neurologist = row("100", "spesialistlege", specialties=("nevrologi",))
    assert codes(evaluate(bill(takst), practices=register(neurologist))) == [[]]


@pytest.mark.parametrize("kind", ["rehabiliteringsinstitusjon", "behandlingsreiser_utland"])
def test_egenandel_only_senders_are_never_paid_a_refund(kind: str) -> None:
    sender = row("100", kind, direct_settlement=None)
    family = sender.practitioner_type
    assert family in ("rehabilitering", "behandlingsreiser")
    report = bill(Takst("E1", Decimal("0.00"), 1))
    assert codes(evaluate(report, practices=register(sender), practitioner=family)) == [[]]
    refund = bill(Takst("E1", Decimal("163.00"), 2))
    result = evaluate(refund, practices=register(sender), practitioner=family)
    assert codes(result) == [["EGENANDEL_REFUSJON"]]
    (finding,) = result.bills[0].findings
    assert "326.00 kr" in finding.text and finding.rule_id == "PRAC-007"
    # the rule needs only the practitioner type: without a register it still refuses
    assert codes(evaluate(refund, practices=register(), practitioner=family)) == [
        ["EGENANDEL_REFUSJON"]
    ]


def test_a_known_type_without_tariff_data_goes_to_manual_control(
    bundled_tariffs: TariffBook,
) -> None:
    radiology = row("100", "privat_rontgeninstitutt", specialties=("radiologi",))
    takst = bill(Takst("R1", Decimal("300.00"), 1))
    result = evaluate(
        takst, practices=register(radiology), practitioner="radiologi", tariffs=bundled_tariffs
    )
    (decision,) = result.bills
    assert decision.status is BillStatus.GODKJENT and decision.manual
    assert [f.code for f in decision.findings] == ["UTEN_TAKSTDATA"]
    # covered types, no tariff data at all, and bills of zeros are left alone
    lege = evaluate(bill(), practices=register(row("100")), tariffs=bundled_tariffs)
    assert not lege.bills[0].manual
    bare = evaluate(takst, practices=register(radiology), practitioner="radiologi")
    assert not bare.bills[0].findings
    zero = bill(Takst("R1", Decimal("0.00"), 1))
    none = evaluate(
        zero, practices=register(radiology), practitioner="radiologi", tariffs=bundled_tariffs
    )
    assert not none.bills[0].findings


def test_no_sender_kuhr_serves_falls_to_type_unknown() -> None:
    sample = register_from_file(SAMPLE)
    for entry in sample:
        if not entry.kind.sends_claims:
            continue
        head, _ = make_claim(
            rng=random.Random(1),
            practitioner="lege",
            bills=1,
            sender=default_sender(entry.her_id),
            receiver=default_receiver(),
            start=DAY,
        )
        found = sender_of(sample, head, DAY.date())
        assert found.practice is not None and found.practitioner_type is not None, entry
    kinds = {p.practice_type for p in sample}
    assert {"fastlege", "legevakt", "poliklinikk", "fritt_behandlingsvalg"} <= kinds


# --- through the pipeline --------------------------------------------------------------------


def send(pipeline: Pipeline, her: str, seed: int) -> None:
    head, krav = make_claim(
        rng=random.Random(seed),
        practitioner="lege",
        bills=2,
        sender=default_sender(her),
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 9, 0),
    )
    raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(seed))
    pipeline.handle(raw, source="spool", source_ref=f"p{seed}", source_name=f"p{seed}.msg")


def test_the_register_decides_through_the_pipeline(
    make_pipeline: Callable[..., Pipeline], store: Store
) -> None:
    pipeline = make_pipeline(practices=register_from_file(SAMPLE))
    send(pipeline, "8141260", 1)  # Testby legesenter: fastlege with an agreement
    send(pipeline, "8400001", 2)  # Testby legevakt
    send(pipeline, "8400016", 3)  # its agreement ended 2022-12-31
    send(pipeline, "8999999", 4)  # not in the register
    codes: dict[int, set[str]] = {}
    bills: dict[int, tuple[str, str | None, str]] = {}
    for bill_id, her, kind, status, code in store.engine.rows(
        "SELECT b.id, b.sender_her, b.practitioner_type, b.status, f.code FROM bills b "
        "LEFT JOIN findings f ON f.bill_id = b.id AND f.severity != 'warning' ORDER BY b.id"
    ):
        bills[bill_id] = (her, kind, status)
        codes.setdefault(bill_id, set()).update([code] if code else [])
    by_sender: dict[str, set[tuple[str | None, str, str | None]]] = {}
    for bill_id, (her, kind, status) in bills.items():
        found = ",".join(sorted(codes[bill_id])) or None
        by_sender.setdefault(her, set()).add((kind, status, found))
    assert by_sender["8141260"] == {("lege", "godkjent", None)}
    assert by_sender["8400001"] == {("lege", "godkjent", None)}
    assert by_sender["8400016"] == {("lege", "avvist", "MANGLER_DIREKTE_OPPGJOR")}
    # an unknown sender is refused (its MsgHead names no practitioner category either)
    assert {status for _, status, _ in by_sender["8999999"]} == {"avvist"}
    assert all("UKJENT_PRAKSIS" in (found or "") for _, _, found in by_sender["8999999"])
