"""Amount rules (AMT-*): the claimed refund against the tariff, repetition percentages,
egenandel exemption codes (kodeverk 7461) and SumKrav against the lines."""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.claims.model import Code, Enkeltregning, Takst
from gateway.claims.persons import age_on
from gateway.rules import amounts, tariff
from gateway.rules.amounts.refund import unit_amount
from gateway.rules.base import Severity
from gateway.rules.engine import BillStatus, Evaluation, RuleEngine
from gateway.tariffs.model import EMPTY_BOOK, TakstEntry, TariffBook
from gateway.testing import claims as generator
from gateway.testing.history import context, enkeltregning, msghead

SENDER = "8141253"
RECEIVED = datetime(2026, 11, 23, 13, 0)
DAY = datetime(2026, 10, 12, 9, 0)
ENGINE = RuleEngine((*tariff.RULES, *amounts.RULES))
DIAGNOSIS = Code("R74", generator.OID_ICPC2, "Akutt øvre luftveisinfeksjon")


def entry(
    code: str,
    practitioner: str,
    honorar: str | None,
    refusjon: str | None,
    egenandel: str | None = None,
    **fields: Any,
) -> TakstEntry:
    def amount(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return TakstEntry(
        code=code,
        practitioner=practitioner,
        valid_from=date(2020, 1, 1),
        valid_to=None,
        honorar=amount(honorar),
        refusjon=amount(refusjon),
        egenandel=amount(egenandel),
        **fields,
    )


BOOK = TariffBook.build(
    "test",
    [
        entry("2ad", "lege", "175", "15", "160"),
        entry("2cd", "lege", "110", "100", "10", repetition_percent=50),
        entry("701c", "lege", None, "24", None),  # hon/ref: one column (CALC-007)
        entry("1e", "lege", "69", None, "59"),  # refusjon = honorar - egenandel
        entry("9x", "lege", None, None, None),  # no amounts: cannot be judged
        entry("201b", "psykolog", "375", "200", "175"),
        entry("a1a", "fysioterapeut", "309", "136", "173"),
        entry("201", "tannlege", "665", "550", None),
        entry("k1", "kiropraktor", "300", "139", "161"),
    ],
)

HEAD = msghead(SENDER, RECEIVED, msg_type="LOM")


def person(born: date, seed: int = 0) -> str:
    """A synthetic (Tenor) fødselsnummer for someone born on ``born``."""
    return generator.make_fnr(random.Random(seed), born, female=seed % 2 == 0)


ADULT = person(date(1980, 5, 17))
CHILD = person(date(2015, 3, 1))  # 11 on DAY
SIXTEEN = person(date(2010, 10, 12))  # 16 on DAY, that very day
TEEN = person(date(2009, 1, 1))  # 17 on DAY


def line(kode: str, verdi: str, antall: int = 1) -> Takst:
    return Takst(kode, Decimal(verdi), antall)


def bill(
    *takster: Takst,
    patient: str = ADULT,
    id_type: str = "FNR",
    fritak: str | None = None,
    sum_refusjon: str | None = None,
    kreditering: bool = False,
    guid: str = "g1",
) -> Enkeltregning:
    return enkeltregning(
        takster or (line("2ad", "15.00"),),
        guid=guid,
        regning_nr="41",
        dato_tid=DAY,
        patient=patient,
        id_type=id_type,
        kreditering=kreditering,
        betalt_egenandel=fritak is None,
        kode_egenandel=None if fritak is None else Code(fritak),
        diagnoser=(DIAGNOSIS,),
        sum_refusjon=None if sum_refusjon is None else Decimal(sum_refusjon),
    )


def evaluate(
    *bills: Enkeltregning, practitioner: str | None = "lege", tariffs: TariffBook = BOOK
) -> Evaluation:
    ctx = context(
        *bills,
        head=HEAD,
        sender_her=SENDER,
        received_at=RECEIVED,
        tariffs=tariffs,
        practitioner=practitioner,
        practitioner_id="9144889",
    )
    return ENGINE.evaluate(ctx)


def findings(result: Evaluation) -> list[str]:
    (decision,) = result.bills
    for finding in decision.findings:
        for national_id in (ADULT, CHILD, SIXTEEN, TEEN):
            assert national_id not in finding.text  # never an id in a text
    return [f.code for f in decision.findings if f.severity is not Severity.WARNING]


def text(result: Evaluation) -> str:
    (decision,) = result.bills
    (finding,) = decision.findings
    return finding.text


# --- AMT-001 the claimed refund ----------------------------------------------------------------


def test_refusjon_without_exemption_passes() -> None:
    result = evaluate(bill(line("2ad", "15.00"), line("2cd", "100.00")))
    assert findings(result) == []
    assert result.bills[0].approved_amount == Decimal("115.00")


def test_honorar_without_exemption_is_rejected_naming_expected_and_claimed() -> None:
    result = evaluate(bill(line("2ad", "175.00")))
    assert result.bills[0].status is BillStatus.AVVIST
    assert findings(result) == ["FEIL_BELOP"]
    message = text(result)
    assert "takst 2ad er krevd med 175.00 kr per enhet, men 15.00 kr gjelder" in message
    assert "Forventet refusjon er 15.00 kr etter refusjonstakst, krevd er 175.00 kr" in message


@pytest.mark.parametrize("code", ["A", "B", "F", "G", "H", "f"])
def test_exemption_code_gives_honorar(code: str) -> None:
    patient = CHILD if code.upper() == "B" else ADULT
    good = bill(line("2ad", "175.00"), line("2cd", "110.00"), patient=patient, fritak=code)
    assert findings(evaluate(good)) == []
    wrong = bill(line("2ad", "15.00"), patient=patient, fritak=code)
    result = evaluate(wrong)
    assert findings(result) == ["FEIL_BELOP"]
    assert f"honorartakst (fritakskode {code.upper()}" in text(result)


@pytest.mark.parametrize("practitioner", ["lege", "psykolog", "fysioterapeut"])
def test_children_under_16_pay_no_egenandel_even_without_code(practitioner: str) -> None:
    takst = {"lege": "2ad", "psykolog": "201b", "fysioterapeut": "a1a"}[practitioner]
    rate = BOOK.takst(takst, practitioner, DAY.date())
    assert rate is not None and rate.honorar is not None and rate.refusjon is not None
    honorar, refusjon = f"{rate.honorar:.2f}", f"{rate.refusjon:.2f}"
    ok = bill(line(takst, honorar), patient=CHILD)
    assert findings(evaluate(ok, practitioner=practitioner)) == []
    result = evaluate(bill(line(takst, refusjon), patient=CHILD), practitioner=practitioner)
    assert findings(result) == ["FEIL_BELOP"]
    assert "pasienten er under 16 år" in text(result)


def test_dental_and_chiropractic_children_are_paid_the_refusjon() -> None:
    tooth = bill(line("201", "550.00", 2), patient=CHILD)
    assert findings(evaluate(tooth, practitioner="tannlege")) == []
    back = bill(line("k1", "139.00"), patient=CHILD)
    assert findings(evaluate(back, practitioner="kiropraktor")) == []


def test_sixteenth_birthday_ends_the_child_exemption() -> None:
    assert age_on(SIXTEEN, DAY.date()) == 16
    assert findings(evaluate(bill(line("2ad", "15.00"), patient=SIXTEEN))) == []
    assert findings(evaluate(bill(line("2ad", "175.00"), patient=SIXTEEN))) == ["FEIL_BELOP"]


def test_psychologist_patients_under_18_pay_no_egenandel() -> None:
    assert (
        findings(evaluate(bill(line("201b", "375.00"), patient=TEEN), practitioner="psykolog"))
        == []
    )
    result = evaluate(bill(line("201b", "200.00"), patient=TEEN), practitioner="psykolog")
    assert "under 18 år" in text(result)
    assert findings(evaluate(bill(line("2ad", "15.00"), patient=TEEN))) == []  # lege: 16


def test_age_is_only_read_from_ids_that_carry_a_birth_date() -> None:
    foreign = bill(line("2ad", "15.00"), patient=CHILD, id_type="PNR")
    assert findings(evaluate(foreign)) == []


def test_sum_must_match_the_lines() -> None:
    result = evaluate(bill(line("2ad", "15.00"), sum_refusjon="14.00"))
    assert findings(result) == ["FEIL_BELOP"]
    assert "SumKrav stemmer ikke med takstene" in text(result)
    assert "Forventet refusjon er 15.00 kr" in text(result) and "krevd er 14.00 kr" in text(result)


def test_single_column_and_derived_refusjon() -> None:
    assert findings(evaluate(bill(line("701c", "24.00"), line("1e", "10.00")))) == []
    assert findings(evaluate(bill(line("701c", "24.00"), fritak="F"))) == []
    assert findings(evaluate(bill(line("1e", "69.00"), fritak="F"))) == []


def test_amounts_stand_aside_when_they_cannot_be_judged() -> None:
    assert findings(evaluate(bill(line("9x", "5.00")))) == []  # no amount in the tariff
    assert findings(evaluate(bill(line("2ad", "99.00"), line("zz", "1.00")))) == ["UKJENT_TAKST"]
    assert findings(evaluate(bill(line("2ad", "99.00")), tariffs=EMPTY_BOOK)) == []
    assert findings(evaluate(bill(line("2ad", "99.00")), practitioner=None)) == []
    assert findings(evaluate(bill(line("2ad", "99.00"), kreditering=True))) == []


def test_unit_amount_by_column() -> None:
    full = entry("x", "lege", "175", "15", "160")
    assert unit_amount(full, honorar=False) == Decimal("15")
    assert unit_amount(full, honorar=True) == Decimal("175")
    derived = entry("x", "lege", "69", None, "59")
    assert unit_amount(derived, honorar=False) == Decimal("10")
    single = entry("x", "lege", None, "24", None)
    assert unit_amount(single, honorar=True) == Decimal("24")
    charged = entry("x", "lege", None, "24", "10")  # an egenandel, but no honorar given
    assert unit_amount(charged, honorar=True) is None


# --- AMT-002 repetition percentage -------------------------------------------------------------


def test_repetitions_at_reduced_percent_are_adjusted() -> None:
    # 2cd at 100 kr, repetitions at 50 %: 3 units are worth 100 + 50 + 50 = 200
    plain = bill(line("2ad", "15.00"), line("2cd", "100.00", 3))
    result = evaluate(plain)
    decision = result.bills[0]
    assert decision.status is BillStatus.GODKJENT
    assert findings(result) == ["REPETISJONSPROSENT"]
    assert decision.approved_amount == Decimal("215.00")
    assert "takst 2cd (50 % per repetisjon)" in text(result)
    assert "Godkjent beløp er 215.00 kr (krevd 315.00 kr)" in text(result)


def test_sum_with_the_percent_applied_passes() -> None:
    reduced = bill(line("2ad", "15.00"), line("2cd", "100.00", 3), sum_refusjon="215.00")
    result = evaluate(reduced)
    assert findings(result) == []
    assert result.bills[0].approved_amount == Decimal("215.00")


def test_sum_between_the_two_is_wrong() -> None:
    odd = bill(line("2ad", "15.00"), line("2cd", "100.00", 3), sum_refusjon="250.00")
    assert findings(evaluate(odd)) == ["FEIL_BELOP"]


# --- AMT-003 exemption codes -------------------------------------------------------------------


def test_unknown_exemption_code_is_rejected() -> None:
    result = evaluate(bill(line("2ad", "175.00"), fritak="X"))
    assert findings(result) == ["FEIL_FRITAK"]
    assert "X kan ikke brukes: koden finnes ikke i kodeverk 7461" in text(result)
    assert "A, B, F, G og H" in text(result)


def test_code_b_needs_a_patient_under_16() -> None:
    result = evaluate(bill(line("2ad", "175.00"), fritak="B", patient=SIXTEEN))
    assert findings(result) == ["FEIL_FRITAK"]
    assert "pasienten var 16 år på behandlingsdatoen" in text(result)
    assert findings(evaluate(bill(line("2ad", "175.00"), fritak="B", patient=CHILD))) == []


def test_exemption_codes_are_checked_without_tariffs_or_practitioner_type() -> None:
    for practitioner, tariffs in [(None, EMPTY_BOOK), ("lab", EMPTY_BOOK), ("lege", BOOK)]:
        wrong = bill(line("NPU02319", "11.89"), fritak="B", patient=ADULT)
        result = evaluate(wrong, practitioner=practitioner, tariffs=tariffs)
        assert "FEIL_FRITAK" in findings(result)


def test_code_b_with_an_unreadable_id_is_left_alone() -> None:
    unreadable = bill(line("2ad", "175.00"), fritak="B", patient="99999999999")
    assert findings(evaluate(unreadable)) == []


# --- AMT-004 SumKrav above the lines -----------------------------------------------------------


def test_sum_above_the_lines_is_rejected_without_tariff_data() -> None:
    inflated = bill(line("2ad", "15.00", 2), sum_refusjon="31.00")
    for practitioner in ("lege", "lab", "logoped"):
        result = evaluate(inflated, practitioner=practitioner, tariffs=EMPTY_BOOK)
        assert findings(result) == ["FEIL_SUMKRAV"]
        assert "SumKrav (31.00 kr)" in text(result) and "30.00 kr" in text(result)
    lower = bill(line("2ad", "15.00", 2), sum_refusjon="29.00")
    assert findings(evaluate(lower, tariffs=EMPTY_BOOK)) == []
    credit = bill(line("2ad", "15.00"), sum_refusjon="31.00", kreditering=True)
    assert findings(evaluate(credit, tariffs=EMPTY_BOOK)) == []


def test_sum_above_the_lines_gives_one_merknad() -> None:
    inflated = bill(line("2ad", "15.00", 2), sum_refusjon="31.00")
    assert findings(evaluate(inflated)) == ["FEIL_BELOP"]  # the tariff covers lege
    assert findings(evaluate(inflated, practitioner=None, tariffs=EMPTY_BOOK)) == []


# --- generated bills ---------------------------------------------------------------------------


def _generator_book() -> TariffBook:
    entries = [
        TakstEntry(
            code=code,
            practitioner=practitioner,
            valid_from=date(2020, 1, 1),
            valid_to=None,
            honorar=rate.honorar,
            refusjon=rate.refusjon,
            egenandel=rate.honorar - rate.refusjon,
        )
        for practitioner, table in (
            ("tannlege", generator.DENTAL),
            ("lege", generator.PHYSICIAN),
            ("psykolog", generator.PSYCHOLOGIST),
        )
        for code, rate in table.items()
    ]
    return TariffBook.build("generator", entries)


GENERATOR_BOOK = _generator_book()


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    practitioner=st.sampled_from(["tannlege", "lege", "psykolog"]),
    day=st.dates(min_value=date(2021, 1, 4), max_value=date(2026, 11, 20)),
)
def test_generated_bills_are_paid_what_they_claim(seed: int, practitioner: str, day: date) -> None:
    at = datetime.combine(day, datetime.min.time()).replace(hour=10)
    generated = generator.make_bill(
        rng=random.Random(seed), practitioner=practitioner, dato_tid=at, regning_nr="1"
    )
    assert age_on(generated.patient.id, day) is not None
    # The generator gives a lege patient under 16 (by birthday, as the rules count) code B
    # and bills the honorar, so every generated bill is right as it is.
    result = evaluate(generated, practitioner=practitioner, tariffs=GENERATOR_BOOK)
    assert findings(result) == []
    assert result.bills[0].approved_amount == generated.behandling.sum_refusjon
