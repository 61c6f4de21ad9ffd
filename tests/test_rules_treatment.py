"""The treatment family: per-profession takst rules from the catalogue (TRT-001 to TRT-010)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.claims.model import Enkeltregning, Takst
from gateway.practices.model import Period, Practice, PracticeRegister
from gateway.rules import treatment
from gateway.rules.base import HistoricBill, Severity
from gateway.rules.engine import BillStatus, Evaluation, RuleEngine
from gateway.rules.registry import RULES
from gateway.tariffs.model import TariffBook
from gateway.testing.history import MemoryHistory, acting_codes, context, enkeltregning, msghead

RECEIVED = datetime(2026, 11, 23, 12, 0)
MONDAY = datetime(2026, 11, 2, 10, 0)
SENDER = "100"
HPR = "9144900"
PATIENT = "01017012345"
ENGINE = RuleEngine(treatment.RULES)


def line(code: str, verdi: str = "100.00", antall: int = 1) -> Takst:
    return Takst(code, Decimal(verdi), antall)


def bill(
    *takster: Takst,
    at: datetime = MONDAY,
    guid: str = "g1",
    regning_nr: str = "1",
    patient: str = PATIENT,
    **behandling: object,
) -> Enkeltregning:
    made = enkeltregning(takster, guid=guid, regning_nr=regning_nr, dato_tid=at, patient=patient)
    return dataclasses.replace(
        made,
        behandling=dataclasses.replace(made.behandling, **behandling),  # type: ignore[arg-type]
    )


def evaluate(
    *bills: Enkeltregning,
    practitioner: str,
    practice_type: str | None = None,
    history: MemoryHistory | None = None,
    tariffs: TariffBook | None = None,
) -> Evaluation:
    extra = {} if tariffs is None else {"tariffs": tariffs}
    ctx = context(
        *bills,
        head=msghead(SENDER, RECEIVED),
        sender_her=SENDER,
        received_at=RECEIVED,
        history=history,
        practitioner=practitioner,
        practitioner_id=HPR,
        **extra,
    )
    if practice_type is not None:
        practice = Practice(SENDER, "Praksis", practice_type, Period(date(2010, 1, 1)))
        register = PracticeRegister.build("t", [practice])
        ctx = dataclasses.replace(ctx, practices=register, practice=practice)
    return ENGINE.evaluate(ctx)


def codes(result: Evaluation) -> list[list[str]]:
    return [[f.code for f in b.findings] for b in result.bills]


def test_the_family_is_registered_and_indexed() -> None:
    assert [r.id for r in treatment.RULES] == [f"TRT-{i:03d}" for i in range(1, 11)]
    for rule in treatment.RULES:
        assert rule in RULES and rule.basis and rule.guidance and rule.practitioners


# --- TRT-001 e-konsultasjon at legevakt ---------------------------------------------------------


def test_an_e_consultation_at_legevakt_takes_only_its_whitelist() -> None:
    extra = bill(line("2ae"), line("2ad"))
    result = evaluate(extra, practitioner="lege", practice_type="legevakt")
    assert codes(result) == [["EKONSULTASJON_KOMBINASJON"]]
    assert "2ad" in result.bills[0].findings[0].text
    listed = bill(line("2ae"), line("2cd"), line("612a"))
    assert codes(evaluate(listed, practitioner="lege", practice_type="legevakt")) == [[]]
    evening = bill(line("2aek"), line("2ck"))
    assert codes(evaluate(evening, practitioner="lege", practice_type="legevakt")) == [[]]
    # at a fastlege the legevakt list does not apply; without a register, nothing is known
    assert codes(evaluate(extra, practitioner="lege", practice_type="fastlege")) == [[]]
    assert codes(evaluate(extra, practitioner="lege")) == [[]]


# --- TRT-002 2bd ---------------------------------------------------------------------------------


def test_2bd_is_not_refunded() -> None:
    result = evaluate(bill(line("2ad"), line("2bd", "10.00")), practitioner="lege")
    assert codes(result) == [["IKKE_REFUSJON"]]
    assert codes(evaluate(bill(line("2ad"), line("2bd", "0.00")), practitioner="lege")) == [[]]


# --- TRT-003 day and evening takster -------------------------------------------------------------


def test_day_and_evening_variants_are_noted_against_the_clock(
    bundled_tariffs: TariffBook,
) -> None:
    def found(code: str, at: datetime) -> list[list[str]]:
        result = evaluate(bill(line(code), at=at), practitioner="lege", tariffs=bundled_tariffs)
        return codes(result)

    saturday = datetime(2026, 11, 7, 11, 0)
    assert found("2ad", MONDAY) == [[]]
    assert found("2ak", MONDAY) == [["DAG_KVELD"]]
    assert found("2ad", saturday) == [["DAG_KVELD"]]
    assert found("2ak", saturday) == [[]]
    assert found("2ad", MONDAY.replace(hour=16)) == [["DAG_KVELD"]]
    assert found("2ae", MONDAY) == [[]]  # no pair in the tariff
    warning = evaluate(bill(line("2ak")), practitioner="lege", tariffs=bundled_tariffs).bills[0]
    assert warning.status is BillStatus.GODKJENT
    assert warning.findings[0].severity is Severity.WARNING and not warning.manual


# --- TRT-004 chiropractor ------------------------------------------------------------------------


def test_chiropractor_consultations_and_meetings_stand_apart() -> None:
    assert codes(evaluate(bill(line("K1"), line("K2")), practitioner="kiropraktor")) == [
        ["KIROPRAKTOR_KOMBINASJON"]
    ]
    meeting = evaluate(bill(line("K3a"), line("K1")), practitioner="kiropraktor")
    assert codes(meeting) == [["KIROPRAKTOR_KOMBINASJON"]]
    assert "samarbeidsmøtet" in meeting.bills[0].findings[0].text
    meetings = bill(line("K3a"), line("K3b", antall=2))
    assert codes(evaluate(meetings, practitioner="kiropraktor")) == [[]]
    assert codes(evaluate(bill(line("K1")), practitioner="kiropraktor")) == [[]]


# --- TRT-005 / TRT-006 psychologist ---------------------------------------------------------------


def test_a_collaboration_meeting_is_not_claimed_with_a_consultation() -> None:
    result = evaluate(bill(line("33a"), line("201b")), practitioner="psykolog")
    assert codes(result) == [["SAMARBEIDSMOTE"]]
    assert codes(evaluate(bill(line("33a"), line("33b")), practitioner="psykolog")) == [[]]


def test_examination_takster_stand_alone() -> None:
    result = evaluate(bill(line("12"), line("201b")), practitioner="psykolog")
    assert codes(result) == [["UNDERSOKELSE_TIDSROM"]]
    assert codes(evaluate(bill(line("12"), line("15b")), practitioner="psykolog")) == [[]]
    assert codes(evaluate(bill(line("201b")), practitioner="psykolog")) == [[]]


# --- TRT-007 speech therapy ---------------------------------------------------------------------


@pytest.mark.parametrize("practitioner", ["logoped", "audiopedagog"])
def test_speech_therapy_treatments_are_one_per_bill(practitioner: str) -> None:
    two = evaluate(bill(line("A1a"), line("A2a")), practitioner=practitioner)
    assert codes(two) == [["LOGOPED_KOMBINASJON"]]
    other = evaluate(bill(line("A1a"), line("C5")), practitioner=practitioner)
    assert codes(other) == [["LOGOPED_KOMBINASJON"]]
    assert "C5" in other.bills[0].findings[0].text
    allowed = evaluate(bill(line("A1a"), line("A1b"), line("B10")), practitioner=practitioner)
    assert codes(allowed) == [[]]


# --- TRT-008 orthodontic controls -----------------------------------------------------------------


def test_one_treatment_control_per_session() -> None:
    assert codes(evaluate(bill(line("604a"), line("604b")), practitioner="kjeveortoped")) == [
        ["EN_PER_SEANSE"]
    ]
    assert codes(evaluate(bill(line("604c", antall=2)), practitioner="kjeveortoped")) == [
        ["EN_PER_SEANSE"]
    ]
    assert codes(evaluate(bill(line("604a"), line("604e")), practitioner="kjeveortoped")) == [[]]


# --- TRT-009 one psychologist treatment a day ----------------------------------------------------


def test_a_psychologist_treats_a_patient_once_a_day() -> None:
    first = bill(line("201b"), guid="a", regning_nr="1")
    second = bill(line("201b"), guid="b", regning_nr="2", at=MONDAY + timedelta(hours=3))
    result = evaluate(first, second, practitioner="psykolog")
    assert codes(result) == [[], ["EN_BEHANDLING_PER_DAG"]]
    assert "regning 1" in result.bills[1].findings[0].text
    other_patient = bill(line("201b"), guid="c", regning_nr="3", patient="02027012345")
    assert codes(evaluate(first, other_patient, practitioner="psykolog")) == [[], []]
    tomorrow = bill(line("201b"), guid="d", regning_nr="4", at=MONDAY + timedelta(days=1))
    assert codes(evaluate(first, tomorrow, practitioner="psykolog")) == [[], []]


def test_a_stored_treatment_the_same_day_counts() -> None:
    morning = MONDAY.replace(hour=8)
    stored = HistoricBill("old", "77", SENDER, HPR, PATIENT, morning, (("201b", 1),))
    history = MemoryHistory(stored)
    result = evaluate(bill(line("201b")), practitioner="psykolog", history=history)
    assert codes(result) == [["EN_BEHANDLING_PER_DAG"]]
    # the bill itself, stored before (a replay), is not another treatment
    itself = HistoricBill("g1", "1", SENDER, HPR, PATIENT, MONDAY, (("201b", 1),))
    again = evaluate(bill(line("201b")), practitioner="psykolog", history=MemoryHistory(itself))
    assert codes(again) == [[]]


# --- TRT-010 more than 25 treatments -------------------------------------------------------------


def test_the_26th_treatment_on_a_referral_goes_to_manual_control() -> None:
    referral = date(2026, 1, 5)
    def treated(number: int, at: datetime) -> HistoricBill:
        return HistoricBill(f"h{number}", str(number), SENDER, HPR, PATIENT, at, (("A1a", 1),))

    earlier = [treated(i, datetime(2026, 2, 1, 9) + timedelta(days=i)) for i in range(24)]
    history = MemoryHistory(*earlier)
    twenty_fifth = bill(line("A1a"), henvisnings_dato=referral)
    assert codes(evaluate(twenty_fifth, practitioner="logoped", history=history)) == [[]]
    history = MemoryHistory(*earlier, treated(24, datetime(2026, 10, 1, 9)))
    result = evaluate(twenty_fifth, practitioner="logoped", history=history)
    (decision,) = result.bills
    assert codes(result) == [["OVER_25_BEHANDLINGER"]] and decision.manual
    assert "nummer 26" in decision.findings[0].text
    # before the referral does not count; without a referral date nothing is counted
    later = bill(line("A1a"), henvisnings_dato=date(2026, 9, 1))
    assert codes(evaluate(later, practitioner="logoped", history=history)) == [[]]
    assert codes(evaluate(bill(line("A1a")), practitioner="logoped", history=history)) == [[]]
    assert acting_codes(evaluate(twenty_fifth, practitioner="lege", history=history)) == [[]]
