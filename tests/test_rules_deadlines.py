"""Deadlines and corrections (DL-*): the 6-month limit, credits within 3 years, duplicates."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.claims.model import Enkeltregning, Takst
from gateway.rules import deadlines
from gateway.rules.base import HistoricBill, Severity
from gateway.rules.deadlines.late_claim import deadline
from gateway.rules.deadlines.old_credit import anniversary
from gateway.rules.engine import BillStatus, Evaluation, RuleEngine
from gateway.rules.registry import RULES
from gateway.testing.history import MemoryHistory, context, enkeltregning, msghead
from gateway.testing.history import acting_codes as codes

SENDER = "8141253"
HPR = "9144889"
RECEIVED = datetime(2026, 11, 23, 13, 0)
TREATED = datetime(2026, 10, 12, 12, 0)


def bill(
    guid: str,
    regning_nr: str,
    at: datetime = TREATED,
    *takster: str,
    patient: str = "p1",
    kreditering: bool = False,
) -> Enkeltregning:
    lines = tuple(Takst(kode, Decimal("100.00"), 1) for kode in takster or ("2ad",))
    return enkeltregning(
        lines,
        guid=guid,
        regning_nr=regning_nr,
        dato_tid=at,
        patient=patient,
        kreditering=kreditering,
    )


def stored(
    guid: str,
    regning_nr: str,
    at: datetime = TREATED,
    *takster: str,
    patient: str = "p1",
    sender: str = SENDER,
) -> HistoricBill:
    lines = tuple((kode, 1) for kode in takster or ("2ad",))
    return HistoricBill(guid, regning_nr, sender, HPR, patient, at, lines)


HEAD = msghead(SENDER, RECEIVED, sender_name="Klinikk")


def evaluate(
    *bills: Enkeltregning,
    history: MemoryHistory | None = None,
    received: datetime = RECEIVED,
    practitioner: str | None = "lege",
) -> Evaluation:
    ctx = context(
        *bills,
        head=HEAD,
        sender_her=SENDER,
        received_at=received,
        history=history,
        practitioner=practitioner,
        practitioner_id=HPR,
    )
    return RuleEngine(deadlines.RULES).evaluate(ctx)


# --- DL-001: within 6 months from the end of the treatment month -------------------------------


@pytest.mark.parametrize(
    ("treated", "last_day"),
    [
        (date(2026, 3, 15), date(2026, 9, 30)),
        (date(2026, 3, 31), date(2026, 9, 30)),
        (date(2026, 8, 31), date(2027, 2, 28)),
        (date(2027, 8, 1), date(2028, 2, 29)),
        (date(2026, 12, 24), date(2027, 6, 30)),
        (date(2026, 7, 1), date(2027, 1, 31)),
    ],
)
def test_deadline_is_the_last_day_of_the_sixth_month_after(treated: date, last_day: date) -> None:
    assert deadline(treated) == last_day


def test_bill_received_on_the_last_day_passes_and_the_day_after_is_too_late() -> None:
    march = bill("g1", "7", datetime(2026, 3, 31, 9, 0))
    assert codes(evaluate(march, received=datetime(2026, 9, 30, 23, 59))) == [[]]
    result = evaluate(march, received=datetime(2026, 10, 1, 0, 1))
    assert [b.status for b in result.bills] == [BillStatus.AVVIST]
    (finding,) = [f for f in result.bills[0].findings if f.severity is not Severity.WARNING]
    assert finding.code == "FOR_SEN"
    assert finding.regning_nr == "7"
    assert finding.text.startswith("Kravet er for seint framsett")
    assert "31.03.2026" in finding.text and "30.09.2026" in finding.text


def test_a_credit_is_not_a_late_claim() -> None:
    credit = bill("g1", "7", datetime(2025, 1, 10, 9, 0), kreditering=True)
    assert codes(evaluate(credit)) == [[]]


# --- DL-002: no credit of bills older than 3 years ---------------------------------------------


def test_credit_within_3_years_passes_and_after_is_rejected() -> None:
    credit = bill("g1", "41", datetime(2023, 11, 23, 9, 0), kreditering=True)
    assert codes(evaluate(credit, received=datetime(2026, 11, 23, 23, 0))) == [[]]
    result = evaluate(credit, received=datetime(2026, 11, 24, 8, 0))
    (finding,) = [f for f in result.bills[0].findings if f.severity is not Severity.WARNING]
    assert finding.code == "KREDITERING_FOR_GAMMEL"
    assert "regningsnummer 41" in finding.text
    assert "23.11.2023" in finding.text
    assert result.bills[0].status is BillStatus.AVVIST


def test_three_years_from_29_february() -> None:
    assert anniversary(date(2024, 2, 29)) == date(2027, 2, 28)
    assert anniversary(date(2024, 3, 1)) == date(2027, 3, 1)


# --- DL-003: the same treatment twice ------------------------------------------------------------


def test_same_patient_code_and_start_under_another_guid_is_a_duplicate() -> None:
    history = MemoryHistory(stored("first", "500", TREATED, "2ad", "701a"))
    result = evaluate(bill("second", "501", TREATED, "2AD"), history=history)
    (finding,) = [f for f in result.bills[0].findings if f.severity is not Severity.WARNING]
    assert finding.code == "DUPLIKAT_BEHANDLING"
    assert finding.regning_nr == "501"
    assert "takst 2AD" in finding.text
    assert "12.10.2026 kl. 12:00" in finding.text
    assert "regningsnummer 500 (tidligere melding)" in finding.text


@pytest.mark.parametrize(
    "other",
    [
        bill("second", "501", TREATED + timedelta(minutes=1), "2ad"),  # another start time
        bill("second", "501", TREATED, "2ad", patient="p2"),  # another patient
        bill("second", "501", TREATED, "2ak"),  # another takst
        bill("first", "500", TREATED, "2ad"),  # the same Guid again: DUP-001's business
        bill("first", "500", TREATED, "2ad", kreditering=True),  # its credit
    ],
)
def test_not_a_duplicate_treatment(other: Enkeltregning) -> None:
    history = MemoryHistory(stored("first", "500", TREATED, "2ad"))
    assert codes(evaluate(other, history=history)) == [[]]


def test_a_duplicate_from_another_sender_counts() -> None:
    history = MemoryHistory(stored("first", "500", TREATED, "2ad", sender="999"))
    assert codes(evaluate(bill("first", "501", TREATED, "2ad"), history=history)) == [
        ["DUPLIKAT_BEHANDLING"]
    ]


def test_laboratories_are_left_to_the_lab_duplicate_rule() -> None:
    history = MemoryHistory(stored("first", "500", TREATED, "NPU21747"))
    again = bill("second", "501", TREATED, "NPU21747")
    assert codes(evaluate(again, history=history, practitioner="lab")) == [[]]
    assert codes(evaluate(again, history=history, practitioner=None)) == [["DUPLIKAT_BEHANDLING"]]


def test_duplicate_within_the_message_rejects_the_later_bill() -> None:
    result = evaluate(bill("a", "1", TREATED, "2ad"), bill("b", "2", TREATED, "2ad"))
    assert [b.status for b in result.bills] == [BillStatus.GODKJENT, BillStatus.AVVIST]
    assert "regningsnummer 1 (samme melding)" in result.bills[1].findings[0].text


def test_credit_then_corrected_bill_in_one_message_is_not_a_duplicate() -> None:
    history = MemoryHistory(stored("first", "500", TREATED, "2ad"))
    credit = bill("first", "500", TREATED, "2ad", kreditering=True)
    corrected = bill("second", "501", TREATED, "2ad", "2cd")
    assert codes(evaluate(credit, corrected, history=history)) == [[], []]


# --- registry ------------------------------------------------------------------------------------


def test_deadline_rules_are_registered_for_every_practitioner() -> None:
    ids = {r.id for r in RULES}
    assert {r.id for r in deadlines.RULES} == {"DL-001", "DL-002", "DL-003", "DL-004"}
    for rule in deadlines.RULES:
        assert rule.id in ids
        assert rule.practitioners is None and rule.codes is None
        assert rule.basis and rule.guidance
