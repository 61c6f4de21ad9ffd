"""What a bill must carry (content family), the referrals psychologists and riding therapy need,
and the chiropractor's frikort."""

from __future__ import annotations

import dataclasses
import random
from datetime import date, datetime
from decimal import Decimal

import pytest

from gateway.claims.model import Code, Enkeltregning, Takst
from gateway.practices.model import Period, Practice, PracticeRegister
from gateway.rules import amounts, content, eligibility
from gateway.rules.content.diagnoses import ICD10, ICPC2
from gateway.rules.engine import Evaluation, RuleEngine
from gateway.rules.registry import RULES
from gateway.testing.claims import make_fnr
from gateway.testing.history import acting_codes, context, enkeltregning, msghead

RECEIVED = datetime(2026, 11, 23, 12, 0)
DAY = datetime(2026, 11, 2, 10, 0)
SENDER = "100"
PATIENT = make_fnr(random.Random(1), date(1980, 5, 17), female=True)
ENGINE = RuleEngine((*content.RULES, *eligibility.RULES, *amounts.RULES))


def bill(
    *takster: Takst, patient: str = PATIENT, id_type: str = "FNR", **behandling: object
) -> Enkeltregning:
    made = enkeltregning(
        takster or (Takst("2ad", Decimal("175.00"), 1),),
        guid="g1",
        regning_nr="7",
        dato_tid=DAY,
        patient=patient,
        id_type=id_type,
    )
    return dataclasses.replace(
        made,
        behandling=dataclasses.replace(made.behandling, **behandling),  # type: ignore[arg-type]
    )


def evaluate(
    *bills: Enkeltregning, practitioner: str | None, practice_type: str | None = None, **row: object
) -> Evaluation:
    ctx = context(
        *bills,
        head=msghead(SENDER, RECEIVED),
        sender_her=SENDER,
        received_at=RECEIVED,
        practitioner=practitioner,
        practitioner_id=SENDER,
    )
    if practice_type is not None:
        practice = Practice(
            SENDER, "Praksis", practice_type, Period(date(2010, 1, 1)), **row  # type: ignore[arg-type]
        )
        register = PracticeRegister.build("t", [practice])
        ctx = dataclasses.replace(ctx, practices=register, practice=practice)
    return ENGINE.evaluate(ctx)


def test_the_new_rules_are_registered() -> None:
    for rule in (*content.RULES, *eligibility.RULES):
        assert rule in RULES and rule.basis and rule.guidance
    assert [r.id for r in content.RULES] == [f"CONT-{i:03d}" for i in range(1, 6)]


# --- CONT-001 patient id ----------------------------------------------------------------------


def test_a_national_id_that_is_no_number_makes_the_patient_unidentifiable() -> None:
    result = evaluate(bill(patient="12345678901"), practitioner="lege")
    assert acting_codes(result) == [["UGYLDIG_PASIENT_ID"]]
    text = result.bills[0].findings[0].text
    assert "FNR" in text and "12345678901" not in text  # the number never in a text
    assert acting_codes(evaluate(bill(), practitioner="lege")) == [[]]
    foreign = bill(patient="X1234", id_type="PNR")  # not judged: its form is not public
    assert acting_codes(evaluate(foreign, practitioner="lege")) == [[]]


# --- CONT-002 diagnosis code system -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("fastlege", ICPC2, ICD10),
        ("legevakt", ICPC2, ICD10),
        ("spesialistlege", ICD10, ICPC2),
        ("psykologspesialist", ICD10, ICPC2),
    ],
)
def test_diagnoses_use_the_code_system_of_the_practice_type(
    kind: str, good: str, bad: str
) -> None:
    family = "psykolog" if kind == "psykologspesialist" else "lege"
    referral = date(2026, 10, 1)  # a psychologist's bill needs one
    ok = bill(diagnoser=(Code("R74", good),), henvisnings_dato=referral)
    assert acting_codes(evaluate(ok, practitioner=family, practice_type=kind)) == [[]]
    wrong = bill(diagnoser=(Code("R74", bad),), henvisnings_dato=referral)
    result = evaluate(wrong, practitioner=family, practice_type=kind)
    assert acting_codes(result) == [["FEIL_DIAGNOSEKODEVERK"]]
    assert "R74" in result.bills[0].findings[0].text


def test_without_a_register_or_a_code_system_diagnoses_are_not_judged() -> None:
    wrong = bill(diagnoser=(Code("R74", ICD10),))
    assert acting_codes(evaluate(wrong, practitioner="lege")) == [[]]
    unsaid = bill(diagnoser=(Code("R74", None),))
    assert acting_codes(evaluate(unsaid, practitioner="lege", practice_type="fastlege")) == [[]]


# --- CONT-003 teeth ----------------------------------------------------------------------------


def test_teeth_are_iso_3950_codes() -> None:
    good = bill(Takst("201", Decimal("550.00"), 2), tenner=("16", "55", "01"))
    assert acting_codes(evaluate(good, practitioner="tannlege")) == [[]]
    bad = bill(Takst("201", Decimal("550.00"), 2), tenner=("16", "19", "99"))
    result = evaluate(bad, practitioner="tannlege")
    assert acting_codes(result) == [["UGYLDIG_TANNKODE"]]
    assert "19, 99" in result.bills[0].findings[0].text


# --- CONT-004 / CONT-005 referral details -------------------------------------------------------


def test_orthodontic_600_takster_name_the_referrer_and_from_2026_the_date() -> None:
    takst = Takst("604a", Decimal("500.00"), 1)
    result = evaluate(bill(takst), practitioner="kjeveortoped")
    assert acting_codes(result) == [["MANGLER_HENVISER"]]
    text = result.bills[0].findings[0].text
    assert "RelatertBehandler" in text and "henvisningsdato" in text
    complete = bill(takst, relatert_behandler="1234567", henvisnings_dato=date(2026, 9, 1))
    assert acting_codes(evaluate(complete, practitioner="kjeveortoped")) == [[]]
    before_2026 = dataclasses.replace(
        bill(takst, relatert_behandler="1234567"), dato_tid=datetime(2025, 12, 30, 9)
    )
    assert acting_codes(evaluate(before_2026, practitioner="kjeveortoped")) == [[]]


def test_an_orthoptist_names_the_referral() -> None:
    takst = Takst("O1", Decimal("300.00"), 1)
    assert acting_codes(evaluate(bill(takst), practitioner="ortoptist")) == [
        ["MANGLER_HENVISNINGS_ID"]
    ]
    referred = bill(takst, henvisnings_id="H-77")
    assert acting_codes(evaluate(referred, practitioner="ortoptist")) == [[]]


# --- ELIG-002 / ELIG-003 referrals required ---------------------------------------------------


def test_a_psychologist_needs_a_referral_except_for_three_assessment_talks() -> None:
    treatment = bill(Takst("201b", Decimal("375.00"), 1))
    result = evaluate(treatment, practitioner="psykolog")
    assert acting_codes(result) == [["MANGLER_HENVISNING"]]
    assert "201b" in result.bills[0].findings[0].text
    referred = bill(Takst("201b", Decimal("375.00"), 1), henvisnings_dato=date(2026, 10, 1))
    assert acting_codes(evaluate(referred, practitioner="psykolog")) == [[]]
    talks = bill(Takst("10a", Decimal("375.00"), 1), Takst("10b", Decimal("375.00"), 2))
    assert acting_codes(evaluate(talks, practitioner="psykolog")) == [[]]
    four = bill(Takst("10a", Decimal("375.00"), 4))
    assert acting_codes(evaluate(four, practitioner="psykolog")) == [["MANGLER_HENVISNING"]]


def test_riding_therapy_still_needs_a_referral() -> None:
    takst = Takst("A1a", Decimal("136.00"), 1)
    riding = {"practice_type": "fysioterapeut", "specialties": ("ridefysioterapi",)}
    result = evaluate(bill(takst), practitioner="fysioterapeut", **riding)  # type: ignore[arg-type]
    assert acting_codes(result) == [["MANGLER_HENVISNING"]]
    assert "ridefysioterapi" in result.bills[0].findings[0].text
    ordinary = evaluate(bill(takst), practitioner="fysioterapeut", practice_type="fysioterapeut")
    assert acting_codes(ordinary) == [[]]
    referred = bill(takst, henvisnings_id="H-1")
    ok = evaluate(referred, practitioner="fysioterapeut", **riding)  # type: ignore[arg-type]
    assert acting_codes(ok) == [[]]


# --- AMT-005 chiropractor frikort -------------------------------------------------------------


def test_frikort_does_not_apply_at_a_chiropractor() -> None:
    frikort = bill(Takst("K1", Decimal("139.00"), 1), kode_egenandel=Code("F"))
    result = evaluate(frikort, practitioner="kiropraktor")
    assert acting_codes(result) == [["FRIKORT_KIROPRAKTOR"]]
    plain = bill(Takst("K1", Decimal("139.00"), 1))
    assert acting_codes(evaluate(plain, practitioner="kiropraktor")) == [[]]
    at_doctor = bill(kode_egenandel=Code("F"))
    doctor = acting_codes(evaluate(at_doctor, practitioner="lege"))
    assert "FRIKORT_KIROPRAKTOR" not in doctor[0]
