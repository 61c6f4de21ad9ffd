"""Dental time rules (DENT-*): time requirements, overlapping and equal start times."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.claims.model import Enkeltregning, Takst
from gateway.rules import dental
from gateway.rules.base import HistoricBill
from gateway.rules.dental import timing
from gateway.rules.engine import BillStatus, Evaluation, RuleEngine
from gateway.rules.registry import RULES
from gateway.tariffs.model import TakstEntry, TariffBook
from gateway.testing.history import MemoryHistory, context, enkeltregning, msghead
from gateway.testing.history import acting_codes as codes

SENDER = "8141253"
HPR = "9144889"
RECEIVED = datetime(2026, 11, 23, 13, 0)
DAY = datetime(2026, 10, 12)
NOON = DAY.replace(hour=12)


def _entry(
    code: str,
    practitioner: str = "tannlege",
    *,
    minutes: int | None = None,
    per_repetition: int | None = None,
    time_based: bool = False,
) -> TakstEntry:
    return TakstEntry(
        code=code,
        practitioner=practitioner,
        valid_from=date(2020, 1, 1),
        valid_to=None,
        honorar=Decimal("500"),
        refusjon=Decimal("300"),
        egenandel=Decimal("200"),
        min_minutes=minutes,
        minutes_per_repetition=per_repetition,
        time_based=time_based,
    )


def _book() -> TariffBook:
    entries: list[TakstEntry] = []
    for practitioner in ("tannlege", "tannpleier"):
        entries += [
            _entry("5", practitioner, minutes=11),  # more than 10 minutes
            _entry("101", practitioner, minutes=20, per_repetition=21),  # 2 units: over 40
            _entry("501", practitioner, minutes=30, per_repetition=30),
            _entry("502", practitioner, time_based=True),
            _entry("6", practitioner, time_based=True),
            _entry("201", practitioner, time_based=True),
            _entry("423", practitioner),  # material: no time need
        ]
    entries += [
        _entry("604e", "kjeveortoped", minutes=45),
        _entry("604a", "kjeveortoped", time_based=True),
    ]
    return TariffBook.build("test", entries)


BOOK = _book()


def bill(
    guid: str,
    regning_nr: str,
    at: datetime,
    *takster: tuple[str, int],
    patient: str = "p1",
    kreditering: bool = False,
) -> Enkeltregning:
    lines = tuple(Takst(kode, Decimal("100.00"), antall) for kode, antall in takster)
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
    at: datetime,
    *takster: tuple[str, int],
    patient: str = "p1",
    practitioner_id: str = HPR,
    sender: str = SENDER,
) -> HistoricBill:
    return HistoricBill(guid, regning_nr, sender, practitioner_id, patient, at, tuple(takster))


def evaluate(
    *bills: Enkeltregning,
    history: MemoryHistory | None = None,
    practitioner: str | None = "tannlege",
    sender: str = SENDER,
) -> Evaluation:
    ctx = context(
        *bills,
        head=msghead(sender, RECEIVED, sender_name="Klinikk"),
        sender_her=sender,
        received_at=RECEIVED,
        history=history,
        tariffs=BOOK,
        practitioner=practitioner,
        practitioner_id=HPR,
    )
    return RuleEngine(dental.RULES).evaluate(ctx)


def statuses(result: Evaluation) -> list[BillStatus]:
    return [b.status for b in result.bills]


OK, NO = BillStatus.GODKJENT, BillStatus.AVVIST


# --- time need ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "minutes"),
    [
        ((("5", 1),), 11),
        ((("101", 1),), 20),
        ((("101", 2),), 41),
        ((("501", 1),), 30),
        ((("501", 3),), 90),
        ((("501", 1), ("502", 1), ("6", 1)), 32),
        ((("201", 3),), timing.IMPLICIT_MINUTES),
        ((("423", 1),), 0),
        ((("999", 1),), 0),  # unknown to the book
    ],
)
def test_time_need_of_a_bill_is_the_sum_of_its_takster(
    lines: tuple[tuple[str, int], ...], minutes: int
) -> None:
    assert timing.time_need(lines, BOOK, "tannlege", DAY.date()).minutes == minutes


def test_time_need_only_per_repetition() -> None:
    entry = _entry("x", per_repetition=15)
    assert timing.takst_minutes(entry, 2) == 30
    assert timing.takst_minutes(None, 2) == 0


# --- DENT-001: a later bill inside the earlier bill's time -------------------------------------


def test_issue_example_502_and_6_split_from_501_is_rejected() -> None:
    first = bill("g1", "100", NOON, ("501", 1))
    split = bill("g2", "101", NOON + timedelta(minutes=20), ("502", 1), ("6", 1))
    result = evaluate(first, split)
    assert statuses(result) == [OK, NO]
    (finding,) = result.bills[1].findings
    assert finding.code == "TIDSKONFLIKT"
    assert finding.regning_nr == "101"
    assert "regningsnummer 100 (samme melding)" in finding.text
    assert "12.10.2026 kl. 12:00" in finding.text
    assert "takst 501" in finding.text
    assert "30 minutter (til 12.10.2026 kl. 12:30)" in finding.text
    assert "Takst 502, 6" in finding.text


def test_issue_example_against_the_store() -> None:
    history = MemoryHistory(stored("g1", "100", NOON, ("501", 1)))
    split = bill("g2", "101", NOON + timedelta(minutes=29), ("502", 1), ("6", 1))
    result = evaluate(split, history=history)
    assert codes(result) == [["TIDSKONFLIKT"]]
    assert "(tidligere melding)" in result.bills[0].findings[0].text


def test_501_502_and_6_on_one_bill_and_the_next_bill_after_30_minutes_pass() -> None:
    one = bill("g1", "100", NOON, ("501", 1), ("502", 1), ("6", 1))
    # 501 + 502 + 6 need 32 minutes with one implicit minute each for 502 and 6.
    after = bill("g2", "101", NOON + timedelta(minutes=32), ("5", 1), patient="p2")
    assert codes(evaluate(one, after)) == [[], []]


def test_the_later_bill_is_rejected_for_any_patient_of_the_same_practitioner() -> None:
    history = MemoryHistory(stored("g1", "100", NOON, ("5", 1), patient="p9"))
    inside = bill("g2", "101", NOON + timedelta(minutes=10), ("201", 1))
    at_end = bill("g3", "102", NOON + timedelta(minutes=11), ("201", 1), patient="p3")
    assert codes(evaluate(inside, history=history)) == [["TIDSKONFLIKT"]]
    assert codes(evaluate(at_end, history=history)) == [[]]


def test_repetitions_of_501_extend_the_required_time() -> None:
    later = bill("g2", "101", NOON + timedelta(minutes=45), ("5", 1), patient="p2")
    twice = MemoryHistory(stored("g1", "100", NOON, ("501", 2)))
    once = MemoryHistory(stored("g1", "100", NOON, ("501", 1)))
    assert codes(evaluate(later, history=twice)) == [["TIDSKONFLIKT"]]
    assert codes(evaluate(later, history=once)) == [[]]


def test_a_bill_without_time_need_may_start_inside_another() -> None:
    material = bill("g2", "101", NOON + timedelta(minutes=10), ("423", 1))
    history = MemoryHistory(stored("g1", "100", NOON, ("501", 1)))
    assert codes(evaluate(material, history=history)) == [[]]


def test_another_practitioner_of_the_same_clinic_does_not_conflict() -> None:
    history = MemoryHistory(stored("g1", "100", NOON, ("501", 1), practitioner_id="7777777"))
    later = bill("g2", "101", NOON + timedelta(minutes=10), ("5", 1))
    assert codes(evaluate(later, history=history)) == [[]]


def test_rules_need_a_dental_practitioner_type() -> None:
    first = bill("g1", "100", NOON, ("501", 1))
    split = bill("g2", "101", NOON + timedelta(minutes=20), ("502", 1), ("6", 1))
    assert codes(evaluate(first, split, practitioner="lege")) == [[], []]
    assert codes(evaluate(first, split, practitioner=None)) == [[], []]
    assert codes(evaluate(first, split, practitioner="tannpleier")) == [[], ["TIDSKONFLIKT"]]


@pytest.mark.parametrize(
    ("day", "expected"),
    [(datetime(2020, 9, 30, 12), []), (datetime(2020, 10, 1, 12), ["TIDSKONFLIKT"])],
)
def test_not_in_force_before_2020_10_01(day: datetime, expected: list[str]) -> None:
    first = bill("g1", "100", day, ("501", 1))
    split = bill("g2", "101", day + timedelta(minutes=20), ("502", 1), ("6", 1))
    assert codes(evaluate(first, split)) == [[], expected]


def test_bills_before_2020_10_01_do_not_block_the_first_bills_after() -> None:
    history = MemoryHistory(stored("g1", "100", datetime(2020, 9, 30, 23, 50), ("501", 1)))
    early = bill("g2", "101", datetime(2020, 10, 1, 0, 5), ("5", 1))
    assert codes(evaluate(early, history=history)) == [[]]


def test_rebill_after_credit_in_the_same_message_is_no_conflict() -> None:
    history = MemoryHistory(stored("old", "100", NOON, ("501", 1)))
    credit = bill("old", "100", NOON, ("501", 1), kreditering=True)
    corrected = bill("new", "101", NOON, ("501", 1), ("6", 1))
    assert codes(evaluate(credit, corrected, history=history)) == [[], []]


def test_the_same_bill_sent_again_is_left_to_the_duplicate_rule() -> None:
    history = MemoryHistory(stored("g1", "100", NOON, ("501", 1)))
    assert codes(evaluate(bill("g1", "100", NOON, ("501", 1)), history=history)) == [[]]


# --- DENT-002: the same start time ------------------------------------------------------------


def test_two_bills_with_time_need_at_the_same_start_time_the_second_is_refused() -> None:
    a = bill("g1", "100", NOON, ("201", 1), patient="p1")
    b = bill("g2", "101", NOON, ("5", 1), patient="p2")
    result = evaluate(a, b)
    assert codes(result) == [[], ["SAMME_STARTTID"]]
    text = result.bills[1].findings[0].text
    assert "regningsnummer 100 (samme melding)" in text
    assert "12.10.2026 kl. 12:00" in text
    assert "takst 201" in text and "Takst 5" in text


def test_same_start_time_against_the_store_and_with_seconds() -> None:
    history = MemoryHistory(stored("g1", "100", NOON, ("201", 1)))
    assert codes(evaluate(bill("g2", "101", NOON, ("201", 2)), history=history)) == [
        ["SAMME_STARTTID"]
    ]
    one_second = bill("g2", "101", NOON + timedelta(seconds=30), ("201", 2))
    # Not the same start time, but inside the implicit minute of 201: the overlap rule.
    assert codes(evaluate(one_second, history=history)) == [["TIDSKONFLIKT"]]
    next_minute = bill("g2", "101", NOON + timedelta(minutes=1), ("201", 2))
    assert codes(evaluate(next_minute, history=history)) == [[]]


def test_same_start_time_is_allowed_when_one_bill_has_no_time_need() -> None:
    a = bill("g1", "100", NOON, ("423", 1))
    b = bill("g2", "101", NOON, ("501", 1), patient="p2")
    assert codes(evaluate(a, b)) == [[], []]
    assert codes(evaluate(b, a)) == [[], []]


# --- exemptions: orthodontists and universities ------------------------------------------------


def test_orthodontist_may_treat_different_patients_at_the_same_time() -> None:
    a = bill("g1", "100", NOON, ("604e", 1), patient="p1")
    b = bill("g2", "101", NOON, ("604e", 1), patient="p2")
    c = bill("g3", "102", NOON + timedelta(minutes=20), ("604a", 1), patient="p3")
    assert codes(evaluate(a, b, c, practitioner="kjeveortoped")) == [[], [], []]


def test_orthodontist_same_patient_inside_604e_is_rejected() -> None:
    a = bill("g1", "100", NOON, ("604e", 1), patient="p1")
    b = bill("g2", "101", NOON + timedelta(minutes=44), ("604a", 1), patient="p1")
    c = bill("g3", "102", NOON + timedelta(minutes=45), ("604a", 1), patient="p1")
    result = evaluate(a, b, c, practitioner="kjeveortoped")
    assert codes(result) == [[], ["TIDSKONFLIKT"], []]
    assert "45 minutter" in result.bills[1].findings[0].text


def test_university_senders_are_exempt_across_patients(monkeypatch: pytest.MonkeyPatch) -> None:
    a = bill("g1", "100", NOON, ("501", 1), patient="p1")
    b = bill("g2", "101", NOON, ("501", 1), patient="p2")
    c = bill("g3", "102", NOON + timedelta(minutes=10), ("5", 1), patient="p1")
    assert codes(evaluate(a, b, c)) == [[], ["SAMME_STARTTID"], ["TIDSKONFLIKT"]]
    monkeypatch.setattr(timing, "UNIVERSITY_HER_IDS", frozenset({SENDER}))
    assert codes(evaluate(a, b, c)) == [[], [], ["TIDSKONFLIKT"]]


# --- DENT-003: the earlier-starting bill arrives after the later one ---------------------------


def test_bill_whose_time_covers_an_approved_later_bill_goes_to_manual_control() -> None:
    history = MemoryHistory(stored("g2", "101", NOON + timedelta(minutes=10), ("5", 1)))
    earlier = bill("g1", "100", NOON, ("501", 1), patient="p2")
    result = evaluate(earlier, history=history)
    (decision,) = result.bills
    assert decision.status is OK
    assert decision.manual
    (finding,) = decision.findings
    assert finding.code == "TIDSKONFLIKT_KONTROLL"
    assert "regningsnummer 101 (tidligere melding)" in finding.text
    assert "starter 12.10.2026 kl. 12:10" in finding.text


def test_reverse_order_within_a_message_approves_both_and_flags_the_earlier_start() -> None:
    later = bill("g2", "101", NOON + timedelta(minutes=10), ("5", 1))
    earlier = bill("g1", "100", NOON, ("501", 1))
    result = evaluate(later, earlier)
    assert statuses(result) == [OK, OK]
    assert codes(result) == [[], ["TIDSKONFLIKT_KONTROLL"]]


# --- DENT-004: 101 once repeated per day -------------------------------------------------------


def test_101_may_be_repeated_once_per_day_per_patient() -> None:
    history = MemoryHistory(
        stored("g1", "100", DAY.replace(hour=9), ("101", 1), practitioner_id="7777777")
    )
    assert codes(evaluate(bill("g2", "101", NOON, ("101", 1)), history=history)) == [[]]
    result = evaluate(bill("g2", "101", NOON, ("101", 2)), history=history)
    assert codes(result) == [["REPETISJON_PER_DAG"]]
    text = result.bills[0].findings[0].text
    assert "Takst 101" in text and "blir det 3 den 12.10.2026" in text and "100" in text
    tomorrow = bill("g2", "101", NOON + timedelta(days=1), ("101", 2))
    assert codes(evaluate(tomorrow, history=history)) == [[]]


def test_101_per_day_counts_the_same_message_and_other_patients_separately() -> None:
    a = bill("g1", "100", DAY.replace(hour=9), ("101", 2))
    b = bill("g2", "101", NOON, ("101", 1))
    c = bill("g3", "102", NOON + timedelta(hours=1), ("101", 2), patient="p2")
    assert codes(evaluate(a, b, c)) == [[], ["REPETISJON_PER_DAG"], []]


# --- registry ------------------------------------------------------------------------------------


def test_dental_rules_are_registered_with_their_data() -> None:
    ids = {r.id for r in RULES}
    for rule in dental.RULES:
        assert rule.id in ids
        assert rule.id.startswith("DENT-")
        assert rule.valid_from == date(2020, 10, 1)
        assert rule.practitioners is not None and rule.practitioners <= timing.DENTAL
        assert rule.basis and rule.guidance and rule.code.isupper()
