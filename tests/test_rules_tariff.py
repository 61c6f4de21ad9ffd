"""Tariff rules (TAR-*): unknown takster, combinations, companions, repetitions, yearly limits,
required diagnosis and procedure, and KUHR merknad 470."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from gateway.claims.model import BehandlerKrav, Code, Enkeltregning, Ident, Takst
from gateway.rules import amounts, tariff
from gateway.rules.base import ClaimContext, HistoricBill, Severity
from gateway.rules.engine import BillDecision, BillStatus, Evaluation, RuleEngine
from gateway.rules.tariff import yearly_limits
from gateway.rules.tariff.support import TAKST_TYPES, covered_types, line_values
from gateway.tariffs.model import EMPTY_BOOK, PRACTITIONER_TYPES, TakstEntry, TariffBook
from gateway.testing import claims as generator
from gateway.testing.history import MemoryHistory, context, enkeltregning, msghead
from gateway.testing.history import acting_codes as codes

SENDER = "8141253"
HPR = "9144889"
RECEIVED = datetime(2026, 11, 23, 13, 0)
DAY = datetime(2026, 10, 12, 9, 0)
PATIENT = "12345678901"
ENGINE = RuleEngine((*tariff.RULES, *amounts.RULES))
DIAGNOSIS = Code("R74", generator.OID_ICPC2, "Akutt øvre luftveisinfeksjon")


def entry(code: str, practitioner: str = "lege", **fields: Any) -> TakstEntry:
    values: dict[str, Any] = {
        "valid_from": date(2020, 1, 1),
        "valid_to": None,
        "honorar": Decimal("175"),
        "refusjon": Decimal("15"),
        "egenandel": Decimal("160"),
    }
    values.update(fields)
    return TakstEntry(code=code, practitioner=practitioner, **values)


BOOK = TariffBook.build(
    "test",
    [
        entry("2ad", invalid_with=frozenset({"2ak", "1ad"})),
        entry("2ak", honorar=Decimal("328"), refusjon=Decimal("48"), egenandel=Decimal("280")),
        entry("1ad", honorar=Decimal("80"), refusjon=Decimal("19"), egenandel=Decimal("61")),
        entry(
            "1bd",
            honorar=Decimal("72"),
            refusjon=Decimal("72"),
            egenandel=Decimal("0"),
            invalid_with_all=True,
        ),
        entry(
            "2cd",
            honorar=Decimal("110"),
            refusjon=Decimal("100"),
            egenandel=Decimal("10"),
            requires_takst=frozenset({"2ad", "2ak"}),
            max_repetitions=5,
        ),
        entry(
            "701a",
            honorar=Decimal("72"),
            refusjon=Decimal("11"),
            egenandel=Decimal("61"),
            max_repetitions=0,
        ),
        entry(
            "701c",
            honorar=Decimal("24"),
            refusjon=Decimal("24"),
            egenandel=Decimal("0"),
            requires_takst=frozenset({"701A"}),
        ),
        entry("612a", requires_diagnosis=True),
        entry("k01a", requires_procedure=True),
        entry("old", valid_to=date(2019, 12, 31), valid_from=date(2010, 1, 1)),
        entry("1", "tannlege", honorar=Decimal("575"), refusjon=Decimal("245"), egenandel=None),
        entry(
            "6",
            "tannlege",
            honorar=Decimal("115"),
            refusjon=Decimal("60"),
            egenandel=None,
            invalid_with=frozenset({"509", "510", "511", "512", "513", "514", "515", "516", "517"}),
        ),
        entry("509", "tannlege", honorar=Decimal("300"), refusjon=Decimal("200"), egenandel=None),
        entry(
            "101",
            "tannlege",
            honorar=Decimal("910"),
            refusjon=Decimal("500"),
            egenandel=None,
            invalid_with=frozenset({"207"}),
        ),
        entry("207", "tannlege", honorar=Decimal("400"), refusjon=Decimal("300"), egenandel=None),
        entry(
            "802",
            "tannlege",
            honorar=Decimal("45"),
            refusjon=Decimal("25"),
            egenandel=None,
            max_repetitions=3,
            repetition_percent=50,
        ),
        entry(
            "12",
            "psykolog",
            honorar=Decimal("420"),
            refusjon=Decimal("420"),
            egenandel=None,
            max_per_year=8,
        ),
        entry("201b", "psykolog", honorar=Decimal("375"), refusjon=Decimal("375"), egenandel=None),
        entry(
            "a1a",
            "fysioterapeut",
            honorar=Decimal("309"),
            refusjon=Decimal("136"),
            egenandel=Decimal("173"),
            max_per_year=2,
            max_per_year_per_patient=False,
        ),
    ],
)

HEAD = msghead(SENDER, RECEIVED, msg_type="LOM")


def line(kode: str, verdi: str = "15.00", antall: int = 1) -> Takst:
    return Takst(kode, Decimal(verdi), antall)


def bill(
    *takster: Takst,
    guid: str = "g1",
    regning_nr: str = "1",
    at: datetime = DAY,
    patient: str = PATIENT,
    diagnoser: tuple[Code, ...] = (DIAGNOSIS,),
    prosedyrekoder: tuple[Code, ...] = (),
    kreditering: bool = False,
    sum_refusjon: str | None = None,
) -> Enkeltregning:
    return enkeltregning(
        takster or (line("2ad"),),
        guid=guid,
        regning_nr=regning_nr,
        dato_tid=at,
        patient=patient,
        kreditering=kreditering,
        diagnoser=diagnoser,
        prosedyrekoder=prosedyrekoder,
        sum_refusjon=None if sum_refusjon is None else Decimal(sum_refusjon),
    )


def stored(
    regning_nr: str,
    at: datetime,
    *takster: tuple[str, int],
    patient: str = PATIENT,
    practitioner_id: str = HPR,
) -> HistoricBill:
    return HistoricBill(f"s{regning_nr}", regning_nr, SENDER, practitioner_id, patient, at, takster)


def evaluate(
    *bills: Enkeltregning,
    practitioner: str | None = "lege",
    tariffs: TariffBook = BOOK,
    history: MemoryHistory | None = None,
    practitioner_id: str = HPR,
    engine: RuleEngine = ENGINE,
) -> Evaluation:
    ctx = context(
        *bills,
        head=HEAD,
        sender_her=SENDER,
        received_at=RECEIVED,
        history=history,
        tariffs=tariffs,
        practitioner=practitioner,
        practitioner_id=practitioner_id,
    )
    return engine.evaluate(ctx)


def only(decision: BillDecision, code: str) -> str:
    """The text of the one finding of ``decision``, which must have ``code``."""
    (finding,) = decision.findings
    assert finding.code == code, decision.findings
    assert PATIENT not in finding.text
    return finding.text


# --- standing aside without data ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("practitioner", "tariffs"),
    [
        (None, BOOK),  # no practitioner registry: type unknown
        ("lege", EMPTY_BOOK),  # no tariffs imported
        ("kiropraktor", BOOK),  # tariffs, but none for this type
        ("lab", BOOK),  # laboratories claim NLK codes (the lab family)
    ],
)
def test_tariff_rules_stand_aside_without_tariff_data(
    practitioner: str | None, tariffs: TariffBook
) -> None:
    nonsense = bill(line("xyz", "999.00", 9), line("1bd"), line("2cd", "1.00"), diagnoser=())
    result = evaluate(nonsense, practitioner=practitioner, tariffs=tariffs)
    tariff_codes = {r.code for r in tariff.RULES} - {"470"}
    found = set(codes(result)[0])
    if practitioner == "lege":
        found.discard("MANGLER_DIAGNOSE")  # a legeregning needs a diagnosis regardless
    assert not found & tariff_codes
    assert not found & {"FEIL_BELOP", "REPETISJONSPROSENT"}


def test_credits_are_not_judged_by_the_tariff() -> None:
    credit = bill(line("xyz"), line("1bd"), line("2ad"), kreditering=True, diagnoser=())
    assert codes(evaluate(credit)) == [[]]


def test_covered_types_are_computed_once_per_book() -> None:
    assert covered_types(BOOK) == {"lege", "tannlege", "psykolog", "fysioterapeut"}
    assert covered_types(BOOK) is covered_types(BOOK)
    assert covered_types(EMPTY_BOOK) == frozenset()
    assert {"lege", "tannlege", "psykolog"} <= TAKST_TYPES and "lab" not in TAKST_TYPES


def test_dispatch_is_by_practitioner_type_and_code() -> None:
    perio = bill(line("501", "480.00"))
    assert "TAR-008" in {r.id for r in ENGINE.rules_for(perio, "tannlege")}
    assert "TAR-008" not in {r.id for r in ENGINE.rules_for(perio, "lege")}
    assert "TAR-008" not in {r.id for r in ENGINE.rules_for(bill(line("2ad")), "tannlege")}
    assert "TAR-011" in {r.id for r in ENGINE.rules_for(bill(line("1BD")), "lege")}
    untyped = {r.id for r in ENGINE.rules_for(perio, None)}
    assert untyped == {"AMT-003"}  # the only rule that needs no practitioner type


def test_every_rule_is_documented() -> None:
    for rule in (*tariff.RULES, *amounts.RULES):
        assert rule.id.startswith(("TAR-", "AMT-")) and rule.version == 1
        assert rule.text and rule.guidance and rule.basis
        assert rule.in_force(date(2026, 6, 1))
        assert rule.practitioners is None or rule.practitioners <= PRACTITIONER_TYPES


# --- TAR-001 unknown takst ---------------------------------------------------------------------


def test_unknown_code_is_rejected_naming_code_type_and_date() -> None:
    result = evaluate(bill(line("2ad"), line("9zz", "10.00")))
    assert result.bills[0].status is BillStatus.AVVIST
    text = only(result.bills[0], "UKJENT_TAKST")
    assert "9zz" in text and "lege" in text and "12.10.2026" in text
    assert "finnes ikke" in text


def test_code_of_another_practitioner_type_is_unknown() -> None:
    result = evaluate(bill(line("509", "200.00")))  # a dental takst on a legeregning
    assert "finnes ikke i takstene for lege" in only(result.bills[0], "UKJENT_TAKST")


def test_code_outside_its_validity_period_is_unknown_on_that_date() -> None:
    result = evaluate(bill(line("old")))
    assert "ikke gyldig" in only(result.bills[0], "UKJENT_TAKST")
    assert codes(evaluate(bill(line("old"), at=datetime(2019, 5, 2, 10, 0)))) == [[]]


def test_known_codes_pass_without_regard_to_case() -> None:
    assert codes(evaluate(bill(line("2AD")))) == [[]]


# --- TAR-002 invalid combinations --------------------------------------------------------------


def test_invalid_combination_is_rejected_either_way_round() -> None:
    for takster in [(line("2ad"), line("2ak", "48.00")), (line("2ak", "48.00"), line("2ad"))]:
        result = evaluate(bill(*takster))
        text = only(result.bills[0], "UGYLDIG_KOMBINASJON")
        assert "2ad" in text and "2ak" in text


def test_alle_means_no_other_takst_on_the_bill() -> None:
    result = evaluate(bill(line("1bd", "72.00"), line("2ad")))
    text = only(result.bills[0], "UGYLDIG_KOMBINASJON")
    assert "1bd kan ikke kombineres med andre takster (her: 2ad)" in text
    assert codes(evaluate(bill(line("1bd", "72.00")))) == [[]]
    # the same code on two lines is a repetition, not a combination
    assert codes(evaluate(bill(line("1bd", "72.00"), line("1BD", "72.00")))) == [[]]


@pytest.mark.parametrize(
    ("first", "second"),
    [("6", "509"), ("101", "207")],  # COMB-009, COMB-010
)
def test_dental_combinations_from_the_catalogue(first: str, second: str) -> None:
    rates = {"6": "60.00", "509": "200.00", "101": "500.00", "207": "300.00"}
    result = evaluate(
        bill(line(first, rates[first]), line(second, rates[second])), practitioner="tannlege"
    )
    assert codes(result) == [["UGYLDIG_KOMBINASJON"]]


def test_valid_combination_passes() -> None:
    good = bill(line("2ad"), line("2cd", "100.00", 2), line("701a", "11.00"))
    assert codes(evaluate(good)) == [[]]


# --- TAR-003 required companion ----------------------------------------------------------------


def test_companion_takst_must_be_on_the_same_bill() -> None:
    result = evaluate(bill(line("2cd", "100.00")))
    text = only(result.bills[0], "MANGLER_TAKST")
    assert "takst 2cd krever en av takstene 2ad eller 2ak" in text
    assert codes(evaluate(bill(line("2ak", "48.00"), line("2cd", "100.00")))) == [[]]
    # the companion is compared without regard to case (the data says 701A)
    assert codes(evaluate(bill(line("701a", "11.00"), line("701c", "24.00")))) == [[]]
    assert "takst 701a" in only(evaluate(bill(line("701c", "24.00"))).bills[0], "MANGLER_TAKST")


def test_companion_on_another_bill_does_not_count() -> None:
    main = bill(line("2ad"), guid="a", regning_nr="1")
    extra = bill(line("2cd", "100.00"), guid="b", regning_nr="2", at=DAY + timedelta(minutes=5))
    assert codes(evaluate(main, extra)) == [[], ["MANGLER_TAKST"]]


def test_companion_control_started_2017_12_01() -> None:
    before = bill(line("2cd", "100.00"), at=datetime(2017, 11, 30, 12, 0))
    assert codes(evaluate(before, tariffs=_always_valid(BOOK))) == [[]]


def _always_valid(book: TariffBook) -> TariffBook:
    return TariffBook.build(
        "old", [dataclasses.replace(e, valid_from=date(2000, 1, 1)) for e in book.takster]
    )


# --- TAR-004 repetitions -----------------------------------------------------------------------


def test_repetitions_beyond_the_maximum_are_not_paid() -> None:
    result = evaluate(bill(line("2ad"), line("701a", "11.00", 3)))
    decision = result.bills[0]
    assert decision.status is BillStatus.GODKJENT
    text = only(decision, "FOR_MANGE_REPETISJONER")
    assert "takst 701a er ført 3 ganger, men godtgjøres høyst 1 gang" in text
    assert decision.approved_amount == Decimal("26.00")  # 15 + one 701a at 11
    assert "26.00" in text and "48.00" in text


def test_repetitions_are_counted_over_all_lines_of_a_code() -> None:
    split = bill(line("2ad"), line("2cd", "100.00", 4), line("2CD", "100.00", 3))
    decision = evaluate(split).bills[0]
    assert decision.findings[0].code == "FOR_MANGE_REPETISJONER"
    assert decision.findings[0].facts["antall"] == "7"
    assert decision.approved_amount == Decimal("615.00")  # 15 + six 2cd at 100


def test_capped_amount_uses_the_repetition_percent() -> None:
    # 802 (25 kr): at most 1 + 3 units; repetitions at 50 %: 25 + 3 x 12.50 = 62.50
    result = evaluate(bill(line("802", "25.00", 6), diagnoser=()), practitioner="tannlege")
    decision = result.bills[0]
    acting = [f.code for f in decision.findings if f.severity is not Severity.WARNING]
    assert acting == ["FOR_MANGE_REPETISJONER", "REPETISJONSPROSENT"]
    assert decision.approved_amount == Decimal("62.50")


def test_repetitions_within_the_maximum_pass() -> None:
    assert codes(evaluate(bill(line("2ad"), line("2cd", "100.00", 6)))) == [[]]


def test_line_values_unit_by_unit() -> None:
    lines = [line("x", "10.00", 2), line("x", "20.00", 2)]
    assert line_values(lines, None) == Decimal("60.00")
    assert line_values(lines, 50) == Decimal("10.00") + Decimal("5.00") + Decimal("20.00")
    assert line_values(lines, 50, limit=2) == Decimal("15.00")
    assert line_values(lines, None, limit=0) == 0
    assert line_values([line("x", "10.00", 10**9)], None, limit=1) == Decimal("10.00")


# --- yearly limits -----------------------------------------------------------------------------


def _sessions(
    count: int, code: str = "12", start: datetime = datetime(2026, 1, 5, 9)
) -> MemoryHistory:
    return MemoryHistory(
        *(stored(str(100 + i), start + timedelta(days=7 * i), (code, 1)) for i in range(count))
    )


def test_psychologist_takst_12_at_most_8_per_year_from_tariff_data() -> None:
    history = _sessions(7)
    eighth = bill(line("12", "420.00"), diagnoser=())
    assert codes(evaluate(eighth, practitioner="psykolog", history=history)) == [[]]
    ninth = evaluate(eighth, practitioner="psykolog", history=_sessions(8))
    text = only(ninth.bills[0], "ARSGRENSE")
    assert "høyst 8 ganger per kalenderår (2026)" in text
    assert "8 er allerede godkjent" in text
    assert ninth.bills[0].findings[0].rule_id == "TAR-005"  # the data's limit, not TAR-009


def test_last_year_does_not_count() -> None:
    history = _sessions(8, start=datetime(2025, 3, 1, 9))
    assert codes(
        evaluate(bill(line("12", "420.00")), practitioner="psykolog", history=history)
    ) == [[]]


def test_earlier_bills_of_the_message_and_lines_of_the_bill_count() -> None:
    history = _sessions(6)
    first = bill(line("12", "420.00"), guid="a", regning_nr="1")
    second = bill(line("12", "420.00"), guid="b", regning_nr="2", at=DAY + timedelta(days=1))
    result = evaluate(first, second, practitioner="psykolog", history=history)
    assert codes(result) == [[], []]
    third = bill(line("12", "420.00"), guid="c", regning_nr="3", at=DAY + timedelta(days=2))
    result = evaluate(first, second, third, practitioner="psykolog", history=history)
    assert codes(result) == [[], [], ["ARSGRENSE"]]
    assert "8 er allerede godkjent" in result.bills[2].findings[0].text
    # the bill that passes the limit with its own lines is rejected
    double = bill(line("12", "420.00", 3))
    assert codes(evaluate(double, practitioner="psykolog", history=history)) == [["ARSGRENSE"]]


def test_rejected_bills_of_the_message_do_not_count() -> None:
    history = _sessions(7)
    bad = bill(line("12", "420.00"), line("9zz", "1.00"), guid="a", regning_nr="1")
    good = bill(line("12", "420.00"), guid="b", regning_nr="2", at=DAY + timedelta(days=1))
    result = evaluate(bad, good, practitioner="psykolog", history=history)
    assert codes(result) == [["UKJENT_TAKST"], []]


def test_a_credit_earlier_in_the_message_gives_its_units_back() -> None:
    history = _sessions(8)
    credit = bill(
        line("12", "420.00"),
        guid="s100",
        regning_nr="100",
        kreditering=True,
        at=datetime(2026, 1, 5, 9),
    )
    again = bill(line("12", "420.00"), guid="n", regning_nr="200")
    result = evaluate(credit, again, practitioner="psykolog", history=history)
    assert codes(result) == [[], []]


def test_per_practitioner_limit_counts_only_this_practitioner() -> None:
    other = stored("1", datetime(2026, 2, 1, 9), ("a1a", 1), practitioner_id="other")
    mine = stored("2", datetime(2026, 3, 1, 9), ("A1A", 1))
    treatment = bill(line("a1a", "136.00"))
    assert codes(
        evaluate(treatment, practitioner="fysioterapeut", history=MemoryHistory(other, mine))
    ) == [[]]
    twice_mine = MemoryHistory(other, mine, stored("3", datetime(2026, 4, 1, 9), ("a1a", 1)))
    result = evaluate(treatment, practitioner="fysioterapeut", history=twice_mine)
    assert "hos samme behandler" in only(result.bills[0], "ARSGRENSE")


def test_periodontal_501_with_502_at_most_14_across_providers_without_tariff_data() -> None:
    history = MemoryHistory(
        *(
            stored(str(i), datetime(2026, 1, 10 + i, 9), ("501", 1), practitioner_id=f"d{i % 3}")
            for i in range(12)
        ),
        stored("90", datetime(2026, 3, 1, 9), ("502", 1)),
    )
    ok = bill(line("501", "480.00"), diagnoser=())
    assert codes(evaluate(ok, practitioner="tannlege", tariffs=EMPTY_BOOK, history=history)) == [[]]
    over = bill(line("502", "480.00"), line("501", "480.00"), diagnoser=())
    result = evaluate(over, practitioner="tannpleier", tariffs=EMPTY_BOOK, history=history)
    text = only(result.bills[0], "ARSGRENSE")
    assert result.bills[0].findings[0].rule_id == "TAR-008"
    assert "Takst 502" in text and "regnet sammen med 501" in text
    assert "13 er allerede godkjent, og denne regningen har 2 til" in text
    assert "hos alle behandlere" in text


def test_catalogue_limit_stands_aside_when_the_tariff_has_one() -> None:
    book = TariffBook.build(
        "t",
        [
            entry(
                "501",
                "tannlege",
                honorar=Decimal("900"),
                refusjon=Decimal("480"),
                egenandel=None,
                max_per_year=2,
                max_per_year_group=frozenset({"501", "502"}),
            ),
            entry(
                "502",
                "tannlege",
                honorar=Decimal("900"),
                refusjon=Decimal("480"),
                egenandel=None,
                max_per_year=2,
                max_per_year_group=frozenset({"501", "502"}),
            ),
        ],
    )
    history = MemoryHistory(stored("1", datetime(2026, 1, 10, 9), ("501", 2)))
    over = bill(line("501", "480.00"), line("502", "480.00"), diagnoser=())
    result = evaluate(over, practitioner="tannlege", tariffs=book, history=history)
    assert [(f.rule_id, f.code) for f in result.bills[0].findings] == [("TAR-005", "ARSGRENSE")]


def test_psychologist_12_catalogue_limit_from_2021_07_01() -> None:
    history = _sessions(8, start=datetime(2021, 1, 4, 9))
    july = bill(line("12", "420.00"), at=datetime(2021, 7, 1, 9))
    june = bill(line("12", "420.00"), at=datetime(2021, 6, 30, 9))
    assert codes(evaluate(july, practitioner="psykolog", tariffs=EMPTY_BOOK, history=history)) == [
        ["ARSGRENSE"]
    ]
    assert codes(evaluate(june, practitioner="psykolog", tariffs=EMPTY_BOOK, history=history)) == [
        []
    ]


def test_k02a_once_per_patient_ever() -> None:
    history = MemoryHistory(stored("1", datetime(2015, 5, 1, 9), ("K02a", 1)))
    result = evaluate(bill(line("K02A", "500.00")), tariffs=EMPTY_BOOK, history=history)
    text = only(result.bills[0], "MAKS_PER_PASIENT")
    assert "høyst 1 gang i alt" in text
    other_patient = bill(line("K02a", "500.00"), patient="10987654321")
    assert codes(evaluate(other_patient, tariffs=EMPTY_BOOK, history=history)) == [[]]


def test_used_before_never_goes_below_zero() -> None:
    credit = bill(line("12", "420.00"), kreditering=True)
    ctx = ClaimContext(
        HEAD,
        BehandlerKrav(None, None, (credit,), 1, Decimal(0)),
        SENDER,
        RECEIVED,
        MemoryHistory(),
        practitioner="psykolog",
    )
    ctx = dataclasses.replace(ctx, earlier=_Earlier([credit]))
    limit = yearly_limits.Limit(frozenset({"12"}), 8)
    assert yearly_limits.used_before(bill(line("12", "420.00")), ctx, limit) == 0


@dataclasses.dataclass
class _Earlier:
    bills: list[Enkeltregning]

    def approved(self) -> Sequence[Enkeltregning]:
        return self.bills


# --- TAR-006 / TAR-007 diagnosis and procedure -------------------------------------------------


def test_legeregning_needs_a_diagnosis_even_without_tariff_data() -> None:
    for tariffs in (BOOK, EMPTY_BOOK):
        result = evaluate(bill(line("2ad"), diagnoser=()), tariffs=tariffs)
        assert "regninger fra lege skal ha minst én diagnose" in only(
            result.bills[0], "MANGLER_DIAGNOSE"
        )
    assert codes(evaluate(bill(line("2ad"), diagnoser=()), practitioner=None)) == [[]]


def test_takst_requiring_a_diagnosis() -> None:
    result = evaluate(bill(line("612a"), diagnoser=()))
    assert "takst 612a krever diagnose" in only(result.bills[0], "MANGLER_DIAGNOSE")
    assert codes(evaluate(bill(line("612a")))) == [[]]
    psychologist = bill(line("201b", "375.00"), diagnoser=())
    assert codes(evaluate(psychologist, practitioner="psykolog")) == [[]]


def test_takst_requiring_a_procedure() -> None:
    result = evaluate(bill(line("k01a")))
    assert "Takst k01a krever prosedyrekode" in only(result.bills[0], "MANGLER_PROSEDYRE")
    with_procedure = bill(line("K01A"), prosedyrekoder=(Code("CJC10", "2.16.578.1.12.4.1.1.7275"),))
    assert codes(evaluate(with_procedure)) == [[]]


# --- TAR-011 merknad 470 -----------------------------------------------------------------------


def test_simple_contact_near_a_consultation_is_rejected_with_470() -> None:
    history = MemoryHistory(stored("77", DAY - timedelta(minutes=45), ("2ad", 1), ("2cd", 1)))
    result = evaluate(bill(line("1bd", "72.00")), history=history)
    text = only(result.bills[0], "470")
    assert "regning 77 av 12.10.2026 kl. 08:15 har takst 2ad" in text


def test_simple_contact_more_than_an_hour_away_or_by_another_doctor_passes() -> None:
    far = MemoryHistory(stored("77", DAY - timedelta(minutes=61), ("2ad", 1)))
    assert codes(evaluate(bill(line("1bd", "72.00")), history=far)) == [[]]
    colleague = MemoryHistory(
        stored("78", DAY + timedelta(minutes=10), ("2ad", 1), practitioner_id="other")
    )
    assert codes(evaluate(bill(line("1bd", "72.00")), history=colleague)) == [[]]
    exactly = MemoryHistory(stored("79", DAY + timedelta(minutes=60), ("2ak", 1)))
    assert codes(evaluate(bill(line("1bd", "72.00")), history=exactly)) == [["470"]]


def test_simple_contact_and_consultation_in_the_same_message() -> None:
    contact = bill(line("1bd", "72.00"), guid="a", regning_nr="1")
    consultation = bill(line("2ad"), guid="b", regning_nr="2", at=DAY + timedelta(minutes=20))
    assert codes(evaluate(contact, consultation)) == [["470"], []]
    assert codes(evaluate(consultation, contact)) == [[], ["470"]]
    other_patient = dataclasses.replace(consultation, patient=Ident("10987654321", "FNR"))
    assert codes(evaluate(contact, other_patient)) == [[], []]


# --- generated good claims ---------------------------------------------------------------------


def generator_book() -> TariffBook:
    """The generator's own tariffs as a book, with flags its visits respect."""
    flags: dict[tuple[str, str], dict[str, Any]] = {
        ("lege", "2ad"): {"invalid_with": frozenset({"2ak", "1ad"}), "requires_diagnosis": True},
        ("lege", "1bd"): {"invalid_with_all": True},
        ("lege", "2cd"): {"requires_takst": frozenset({"2ad", "2ak"}), "max_repetitions": 5},
        ("lege", "701c"): {"requires_takst": frozenset({"701a"})},
        ("lege", "701a"): {"max_repetitions": 0},
        ("tannlege", "501"): {"max_per_year": 14, "max_per_year_group": frozenset({"501", "502"})},
        ("tannlege", "6"): {"invalid_with": frozenset({"509", "510"})},
        ("psykolog", "12"): {"max_per_year": 8},
    }
    entries = []
    for practitioner, table in (
        ("tannlege", generator.DENTAL),
        ("lege", generator.PHYSICIAN),
        ("psykolog", generator.PSYCHOLOGIST),
    ):
        for code, rate in table.items():
            entries.append(
                TakstEntry(
                    code=code,
                    practitioner=practitioner,
                    valid_from=date(2020, 1, 1),
                    valid_to=None,
                    honorar=rate.honorar,
                    refusjon=rate.refusjon,
                    egenandel=rate.honorar - rate.refusjon,
                    **flags.get((practitioner, code), {}),
                )
            )
    return TariffBook.build("generator", entries)


@pytest.mark.parametrize("practitioner", ["tannlege", "lege", "psykolog"])
def test_generated_good_claims_pass_every_tariff_and_amount_rule(practitioner: str) -> None:
    book = generator_book()
    for seed in range(40):
        _, krav = generator.make_claim(
            rng=random.Random(seed),
            practitioner=practitioner,  # type: ignore[arg-type]
            bills=6,
            sender=generator.default_sender(),
            receiver=generator.default_receiver(),
            start=datetime(2026, 10, 5, 8, 0),
        )
        ctx = ClaimContext(
            HEAD,
            krav,
            SENDER,
            RECEIVED,
            MemoryHistory(),
            tariffs=book,
            practitioner=practitioner,
            practitioner_id=HPR,
        )
        result = ENGINE.evaluate(ctx)
        for decision in result.bills:
            assert decision.findings == (), (seed, decision.findings)
            assert decision.approved_amount == decision.bill.behandling.sum_refusjon
