"""Rule family 2: laboratory (NLK) rules."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.claims.model import Code, Enkeltregning, Takst
from gateway.rules import lab
from gateway.rules.base import HistoricBill, Severity
from gateway.rules.engine import BillStatus, Evaluation, RuleEngine
from gateway.rules.lab.common import LAB_PRACTITIONERS, payable_category
from gateway.rules.lab.register import register_problems
from gateway.rules.registry import RULES
from gateway.tariffs.model import EMPTY_BOOK, NlkEntry, NlkRate, TariffBook
from gateway.testing import claims as generator
from gateway.testing.history import MemoryHistory, context, enkeltregning, msghead
from gateway.testing.history import acting_codes as codes

RECEIVED = datetime(2022, 6, 20, 12, 0)
DAY = datetime(2022, 6, 1, 9, 0)
MORNING = datetime(2022, 6, 1, 7, 0)
SENDER = "8141253"
PATIENT = "01017012345"
START = date(2018, 1, 1)


def nlk(
    code: str,
    fagomrade: str,
    category: str,
    *,
    starred: bool = False,
    valid_from: date = START,
    valid_to: date | None = None,
    replaces: str | None = None,
    list_code: bool = False,
    pharmacogenetic: bool = False,
) -> NlkEntry:
    return NlkEntry(
        code=code,
        fagomrade=fagomrade,
        category=category,
        starred=starred,
        valid_from=valid_from,
        valid_to=valid_to,
        replaces=replaces,
        list_code=list_code,
        pharmacogenetic=pharmacogenetic,
    )


def rates(year: int, **kroner: str) -> list[NlkRate]:
    return [NlkRate(category, year, Decimal(amount)) for category, amount in kroner.items()]


# Rates from ../shared/reference/nlk-rates.csv (SUS v1.6 2021, v1.7 2022); MG2 is made up.
BOOK = TariffBook.build(
    "test",
    nlk_codes=[
        nlk("NPU02319", "KF", "KF1"),
        nlk("NPU01349", "KF", "KF2"),
        nlk("NPU27300", "KF", "KF3"),
        nlk("NPU19748", "MB", "MB2"),
        nlk("NPU03230", "MB", "MB4", starred=True),
        nlk("NPU11111", "MB", "MB3", valid_to=date(2022, 5, 31)),
        nlk("NPU22222", "MB", "MB2", valid_from=date(2022, 6, 1), replaces="NPU11111"),
        nlk("NPU21747", "IT", "IT1", list_code=True),
        nlk("NPU26765", "IT", "IT2"),  # a list code by the issue, even unflagged
        nlk("NPU20200", "IT", "IT3", list_code=True),
        nlk("MGA00001", "MG", "MG2"),
        nlk("MGA00002", "MG", "MG2"),
        nlk("NPU55555", "KF", "KF2", pharmacogenetic=True),
    ],
    nlk_rates=[
        *rates(2021, KF1="11.75", KF2="21.95", KF3="40.41", MB2="6.74", MB3="9.22", MB4="12.20"),
        *rates(2021, IT1="22.43", IT2="31.39", IT3="43.73", MG2="500.00"),
        *rates(2022, KF1="11.89", KF2="22.21", KF3="40.89", MB2="6.82", MB3="9.33", MB4="12.35"),
        *rates(2022, IT1="22.70", IT2="31.77", IT3="44.25", MG2="510.00"),
    ],
)

HEAD = msghead(SENDER, RECEIVED, sender_name="Fürst")


def line(code: str, verdi: str, antall: int = 1) -> Takst:
    return Takst(code, Decimal(verdi), antall)


def bill(
    *takster: Takst,
    guid: str = "g1",
    regning_nr: str = "1",
    dato_tid: datetime = DAY,
    patient: str = PATIENT,
    kreditering: bool = False,
    prosedyrekoder: tuple[Code, ...] = (),
) -> Enkeltregning:
    return enkeltregning(
        takster,
        guid=guid,
        regning_nr=regning_nr,
        dato_tid=dato_tid,
        patient=patient,
        kreditering=kreditering,
        prosedyrekoder=prosedyrekoder,
        relatert_behandler="1234567",
        sum_refusjon=sum((t.verdi * t.antall for t in takster), Decimal("0")),
    )


def stored(
    *takster: tuple[str, int],
    guid: str = "old",
    regning_nr: str = "77",
    sender_her: str = "999",
    dato_tid: datetime = MORNING,
    patient: str = PATIENT,
) -> HistoricBill:
    return HistoricBill(guid, regning_nr, sender_her, "999", patient, dato_tid, takster)


def evaluate(
    *bills: Enkeltregning,
    practitioner: str | None = "lab",
    book: TariffBook = BOOK,
    history: MemoryHistory | None = None,
) -> Evaluation:
    ctx = context(
        *bills,
        head=HEAD,
        sender_her=SENDER,
        received_at=RECEIVED,
        history=history,
        tariffs=book,
        practitioner=practitioner,
        practitioner_id=SENDER,
    )
    return RuleEngine(lab.RULES).evaluate(ctx)


# --- Scope ----------------------------------------------------------------------------------------


def test_rules_are_data_for_lab_types_from_2018_and_registered() -> None:
    assert [r.id for r in lab.RULES] == [f"LAB-{i:03d}" for i in range(1, 11)]
    for rule in lab.RULES:
        assert rule.valid_from == START
        assert rule.practitioners and rule.practitioners <= LAB_PRACTITIONERS
        assert rule.codes is None  # every NLK code concerns them: indexed by practitioner only
        assert rule.basis and rule.guidance and rule.text
        assert rule.code.isupper()
        assert rule in RULES


def test_correct_lab_bill_is_approved_with_its_amount() -> None:
    good = bill(line("NPU02319", "11.89"), line("NPU19748", "6.82"), line("NPU27300", "40.89"))
    result = evaluate(good)
    assert codes(result) == [[]]
    assert result.bills[0].approved_amount == Decimal("59.60")


@pytest.mark.parametrize("practitioner", [None, "lege", "tannlege"])
def test_rules_are_silent_for_other_practitioners(practitioner: str | None) -> None:
    bad = bill(line("XXX", "1.00", 3), line("NPU03230", "99.00"), line("MGA00001", "1.00"))
    assert codes(evaluate(bad, practitioner=practitioner)) == [[]]


def test_rules_are_silent_without_nlk_data_and_before_2018() -> None:
    bad = bill(line("XXX", "1.00", 3), line("NPU03230", "99.00"))
    assert codes(evaluate(bad, book=EMPTY_BOOK)) == [[]]
    old = bill(line("XXX", "1.00", 3), dato_tid=datetime(2017, 12, 31, 9, 0))
    assert codes(evaluate(old)) == [[]]


def test_credits_are_left_to_the_credit_rule() -> None:
    credit = bill(line("XXX", "1.00", 3), line("NPU03230", "99.00"), kreditering=True)
    assert codes(evaluate(credit)) == [[]]


# --- LAB-001 UGYLDIG_NLK --------------------------------------------------------------------------


def test_unknown_code_rejects_the_bill_naming_code_and_date() -> None:
    result = evaluate(bill(line("NPU02319", "11.89"), line("NPU99999", "11.89")))
    assert result.bills[0].status is BillStatus.AVVIST
    assert result.bills[0].approved_amount == 0
    (finding,) = result.bills[0].findings
    assert finding.code == "UGYLDIG_NLK"
    assert finding.rule_id == "LAB-001"
    assert "NPU99999" in finding.text
    assert "NPU02319" not in finding.text
    assert "2022-06-01" in finding.text


def test_code_validity_follows_the_analysis_date() -> None:
    expired = datetime(2022, 6, 1, 8, 0)
    last_day = datetime(2022, 5, 31, 23, 0)
    assert codes(evaluate(bill(line("NPU11111", "9.33"), dato_tid=last_day))) == [[]]
    assert codes(evaluate(bill(line("NPU11111", "9.33"), dato_tid=expired))) == [["UGYLDIG_NLK"]]
    assert codes(evaluate(bill(line("NPU22222", "9.33"), dato_tid=last_day))) == [["UGYLDIG_NLK"]]


# --- LAB-002 STJERNEKODE, LAB-003 INNLAGT ---------------------------------------------------------


def test_starred_code_is_not_refunded() -> None:
    result = evaluate(bill(line("NPU02319", "11.89"), line("NPU03230", "12.35")))
    (finding,) = result.bills[0].findings
    assert (finding.code, finding.rule_id) == ("STJERNEKODE", "LAB-002")
    assert "NPU03230" in finding.text
    assert "ISF" in finding.text
    assert result.bills[0].status is BillStatus.AVVIST


def test_inpatient_marker_rejects_the_bill() -> None:
    inpatient = bill(line("NPU02319", "11.89"), prosedyrekoder=(Code("innlagt", "x"),))
    result = evaluate(inpatient)
    (finding,) = result.bills[0].findings
    assert finding.code == "INNLAGT"
    assert "NPU02319" in finding.text
    other = bill(line("NPU02319", "11.89"), prosedyrekoder=(Code("ABC01"),))
    assert codes(evaluate(other)) == [[]]


# --- LAB-004 NLK_BELOP ----------------------------------------------------------------------------


def test_wrong_amount_names_expected_and_claimed() -> None:
    result = evaluate(bill(line("NPU02319", "11.75"), line("NPU19748", "6.82")))
    (finding,) = result.bills[0].findings
    assert (finding.code, finding.rule_id) == ("NLK_BELOP", "LAB-004")
    assert finding.severity is Severity.REJECT_BILL
    assert finding.facts["forventet"] == "11.89"
    assert finding.facts["krevd"] == "11.75"
    assert "NPU02319 (kategori KF1)" in finding.text
    assert "NPU19748" not in finding.text
    assert "2022" in finding.text


def test_amount_is_rate_of_the_analysis_year_times_antall() -> None:
    in_2021 = datetime(2021, 11, 3, 10, 0)
    assert codes(evaluate(bill(line("NPU02319", "11.75"), dato_tid=in_2021))) == [[]]
    assert codes(evaluate(bill(line("NPU02319", "11.89"), dato_tid=in_2021))) == [["NLK_BELOP"]]
    # list code with antall 3: 3 × 22.70
    assert codes(evaluate(bill(line("NPU21747", "22.70", 3)))) == [[]]
    result = evaluate(bill(line("NPU21747", "68.10", 3)))  # total put in Verdi
    (finding,) = result.bills[0].findings
    assert finding.facts["forventet"] == "68.10"
    assert finding.facts["krevd"] == "204.30"


def test_amount_is_not_checked_without_a_rate_for_the_year() -> None:
    in_2023 = datetime(2023, 2, 1, 10, 0)
    assert codes(evaluate(bill(line("NPU02319", "12.50"), dato_tid=in_2023))) == [[]]


def test_replacing_code_is_paid_at_the_category_of_the_code_it_replaces() -> None:
    # NPU22222 is MB2 itself but replaces NPU11111 (MB3): paid 9.33 in 2022, not 6.82.
    assert codes(evaluate(bill(line("NPU22222", "9.33")))) == [[]]
    result = evaluate(bill(line("NPU22222", "6.82")))
    (finding,) = result.bills[0].findings
    assert finding.code == "NLK_BELOP"
    assert "kategori MB3" in finding.text


# --- Category lookup (item 6) ---------------------------------------------------------------------


def test_payable_category_follows_replaces_and_falls_back() -> None:
    book = TariffBook.build(
        "chain",
        nlk_codes=[
            nlk("C", "MB", "MB7", valid_to=date(2019, 12, 31)),
            nlk(
                "B",
                "MB",
                "MB2",
                valid_from=date(2020, 1, 1),
                valid_to=date(2021, 12, 31),
                replaces="C",
            ),
            nlk("A", "MB", "MB2", valid_from=date(2022, 1, 1), replaces="B"),
            nlk("N", "MM", "MM2", valid_from=date(2022, 1, 1), replaces="GONE"),
            nlk("E", "KF", "", valid_from=date(2022, 1, 1)),
            nlk("L", "IT", "IT4", valid_from=date(2022, 1, 1), replaces="OLD"),
            nlk("OLD", "IT", "IT5", valid_from=date(2023, 1, 1)),  # odd data: listed later
            nlk("S", "MB", "MB5", valid_from=date(2022, 1, 1), replaces="S"),
        ],
    )
    on = date(2022, 6, 1)

    def category(code: str) -> str:
        entry = book.nlk(code, on)
        assert entry is not None
        return payable_category(book, entry, on)

    assert category("A") == "MB7"  # chain A -> B -> C
    assert category("N") == "MM2"  # replaced code unknown: own category
    assert category("E") == "KF2"  # no category: category 2 of its field
    assert category("L") == "IT5"  # replaced code not valid around the switch: any entry
    assert category("S") == "MB5"  # replaces itself: no loop
    assert book.nlk_rate(category("A"), 2022) is None  # the rate is looked up per category


def test_register_check_reports_new_codes_outside_category_2() -> None:
    book = TariffBook.build(
        "check",
        nlk_codes=[
            nlk("OLD1", "MB", "MB9"),  # listed from the start: any category
            nlk("NEW1", "MM", "MM2", valid_from=date(2021, 3, 1)),
            nlk("NEW2", "IT", "IT4", valid_from=date(2021, 3, 1)),
            nlk("REP1", "MB", "MB9", valid_from=date(2021, 3, 1), replaces="OLD1"),
            nlk("OLD1", "MB", "MB8", valid_from=date(2021, 3, 1)),  # reclassified, not new
            nlk("BAD1", "KF", "MB2"),
            nlk("REP2", "MG", "MG2", replaces="NOPE"),
        ],
    )
    problems = register_problems(book)
    assert len(problems) == 3
    assert any("NEW2" in p and "IT2" in p for p in problems)
    assert any("BAD1" in p and "fagområde KF" in p for p in problems)
    assert any("REP2" in p and "NOPE" in p for p in problems)
    assert register_problems(BOOK) == []


# --- LAB-005 NLK_DUPLIKAT -------------------------------------------------------------------------


def test_same_code_same_patient_same_day_in_the_message_rejects_the_later_bill() -> None:
    first = bill(line("NPU02319", "11.89"), guid="a", regning_nr="1")
    again = bill(
        line("NPU01349", "22.21"),
        line("NPU02319", "11.89"),
        guid="b",
        regning_nr="2",
        dato_tid=DAY.replace(hour=15),
    )
    result = evaluate(first, again)
    assert codes(result) == [[], ["NLK_DUPLIKAT"]]
    finding = result.bills[1].findings[0]
    assert "NPU02319: regningsnummer 1" in finding.text
    assert "NPU01349" not in finding.text
    assert "2022-06-01" in finding.text


def test_duplicate_control_needs_same_patient_and_day_and_spares_list_codes() -> None:
    first = bill(line("NPU02319", "11.89"), line("NPU21747", "22.70", 2), guid="a")
    other_patient = bill(line("NPU02319", "11.89"), guid="b", patient="02027012345")
    next_day = bill(line("NPU02319", "11.89"), guid="c", dato_tid=DAY + timedelta(days=1))
    lists = bill(
        line("NPU21747", "22.70", 2),
        line("NPU26765", "31.77"),
        line("NPU20200", "44.25"),
        guid="d",
    )
    lists_again = bill(line("NPU26765", "31.77"), line("NPU20200", "44.25", 4), guid="e")
    result = evaluate(first, other_patient, next_day, lists, lists_again)
    assert codes(result) == [[], [], [], [], []]


def test_duplicate_of_a_stored_bill_from_any_laboratory() -> None:
    history = MemoryHistory(stored(("NPU02319", 1), ("NPU21747", 1)))
    result = evaluate(bill(line("NPU02319", "11.89")), history=history)
    assert codes(result) == [["NLK_DUPLIKAT"]]
    assert "regningsnummer 77" in result.bills[0].findings[0].text
    assert history.calls["patient_bills_between"] == 1
    assert codes(evaluate(bill(line("NPU21747", "22.70")), history=history)) == [[]]
    history_yesterday = MemoryHistory(stored(("NPU02319", 1), dato_tid=DAY - timedelta(days=1)))
    assert codes(evaluate(bill(line("NPU02319", "11.89")), history=history_yesterday)) == [[]]


def test_stored_bill_itself_or_one_credited_in_the_message_is_no_duplicate() -> None:
    itself = MemoryHistory(stored(("NPU02319", 1), guid="g1", sender_her=SENDER))
    assert codes(evaluate(bill(line("NPU02319", "11.89"), guid="g1"), history=itself)) == [[]]
    mine = MemoryHistory(stored(("NPU02319", 1), guid="old", sender_her=SENDER))
    credit = bill(line("NPU02319", "11.89"), guid="old", regning_nr="77", kreditering=True)
    corrected = bill(line("NPU02319", "11.89"), guid="new", regning_nr="78")
    assert codes(evaluate(credit, corrected, history=mine)) == [[], []]
    assert codes(evaluate(corrected, history=mine)) == [["NLK_DUPLIKAT"]]


# --- LAB-006 NLK_REPETISJON -----------------------------------------------------------------------


def test_repeated_ordinary_code_is_paid_once() -> None:
    result = evaluate(bill(line("NPU02319", "11.89", 3), line("NPU19748", "6.82")))
    decision = result.bills[0]
    (finding,) = decision.findings
    assert (finding.code, finding.rule_id) == ("NLK_REPETISJON", "LAB-006")
    assert finding.severity is Severity.ADJUST
    assert decision.status is BillStatus.GODKJENT
    assert decision.approved_amount == Decimal("18.71")  # 11.89 + 6.82
    assert "NPU02319 × 3" in finding.text
    assert "23.78" in finding.text


def test_same_code_on_two_lines_of_one_bill_is_paid_once() -> None:
    result = evaluate(bill(line("NPU02319", "11.89"), line("npu02319", "11.89")))
    assert codes(result) == [["NLK_REPETISJON"]]
    assert result.bills[0].approved_amount == Decimal("11.89")


def test_list_codes_repeat_per_panel_set_up_or_antigen() -> None:
    panels = bill(
        line("NPU21747", "22.70", 5),
        line("NPU26765", "31.77", 2),
        line("NPU20200", "44.25"),
        line("NPU20200", "44.25", 2),
    )
    result = evaluate(panels)
    assert codes(result) == [[]]
    assert result.bills[0].approved_amount == Decimal("309.79")


# --- LAB-007..009 genetics ------------------------------------------------------------------------


def test_genetics_code_only_from_a_genetics_laboratory() -> None:
    result = evaluate(bill(line("MGA00001", "510.00")))
    (finding,) = result.bills[0].findings
    assert (finding.code, finding.rule_id) == ("GENETIKK_REKVIRENT", "LAB-007")
    assert "MGA00001" in finding.text
    genetics_lab = evaluate(
        bill(line("MGA00001", "510.00"), line("MGA00002", "510.00")),
        practitioner="medisinsk_genetikk",
    )
    assert codes(genetics_lab) == [[]]


def test_genetics_laboratory_claims_only_genetics_or_pharmacogenetics() -> None:
    other = evaluate(bill(line("NPU19748", "6.82")), practitioner="medisinsk_genetikk")
    (finding,) = other.bills[0].findings
    assert (finding.code, finding.rule_id) == ("GENETIKK_FAGOMRADE", "LAB-008")
    assert "NPU19748 (MB)" in finding.text
    pharmacogenetic = evaluate(bill(line("NPU55555", "22.21")), practitioner="medisinsk_genetikk")
    assert codes(pharmacogenetic) == [[]]
    # an ordinary laboratory may claim the pharmacogenetic KF code too
    assert codes(evaluate(bill(line("NPU55555", "22.21")))) == [[]]


def test_genetics_codes_may_not_share_a_bill_with_other_fields() -> None:
    mixed = bill(line("MGA00001", "510.00"), line("NPU55555", "22.21"))
    result = evaluate(mixed, practitioner="medisinsk_genetikk")
    (finding,) = result.bills[0].findings
    assert (finding.code, finding.rule_id) == ("GENETIKK_KOMBINASJON", "LAB-009")
    assert "MGA00001" in finding.text
    assert "NPU55555 (KF)" in finding.text
    by_lab = evaluate(bill(line("MGA00001", "510.00"), line("NPU19748", "6.82")))
    assert codes(by_lab) == [["GENETIKK_REKVIRENT", "GENETIKK_KOMBINASJON"]]


# --- Generated claims -----------------------------------------------------------------------------


def test_generated_lab_bills_pass_when_the_register_knows_their_codes() -> None:
    categories = {"11.89": "KF1", "22.21": "KF2", "40.89": "KF3"}
    book = TariffBook.build(
        "generated",
        nlk_codes=[
            nlk(code, "KF", categories[f"{rate.refusjon:.2f}"])
            for code, rate in generator.LAB.items()
        ],
        nlk_rates=rates(2022, KF1="11.89", KF2="22.21", KF3="40.89"),
    )
    rng = random.Random(4)
    bills = [
        generator.make_bill(
            rng=rng, practitioner="lab", dato_tid=DAY + timedelta(days=i), regning_nr=str(i)
        )
        for i in range(30)
    ]
    result = evaluate(*bills, book=book)
    assert codes(result) == [[]] * 30
    assert all(b.approved_amount == b.bill.behandling.sum_refusjon for b in result.bills)


# --- issue 14: repetition beyond the list codes; HPV screening -----------------------------------

REPEATABLE_BOOK = TariffBook.build(
    "issue-14",
    nlk_codes=[
        *BOOK.nlk_codes,
        nlk("NOR99501", "MB", "MB2"),  # unspecific
        nlk("NOR99601", "IT", "IT2"),  # blood compatibility, per unit
        nlk("NOR99701", "MB", "MB2"),  # verification measurement
        nlk("NOR99801", "MM", "MM2"),  # HPV
    ],
    nlk_rates=[*BOOK.nlk_rates, *rates(2022, MM2="50.00")],
)


@pytest.mark.parametrize("code", ["NOR99501", "NOR99601", "NOR99701"])
def test_unspecific_per_unit_and_verification_codes_may_repeat(code: str) -> None:
    rate = "31.77" if code == "NOR99601" else "6.82"
    repeated = bill(line(code, rate, 3))
    assert codes(evaluate(repeated, book=REPEATABLE_BOOK)) == [[]]
    # ... and are no duplicate of an earlier bill the same day
    history = MemoryHistory(stored((code, 2)))
    assert codes(evaluate(bill(line(code, rate)), book=REPEATABLE_BOOK, history=history)) == [[]]
    # an ordinary code still is both
    assert codes(evaluate(bill(line("NPU19748", "6.82", 2)), book=REPEATABLE_BOOK)) == [
        ["NLK_REPETISJON"]
    ]


def hpv_patient(born: date, *, female: bool) -> str:
    return generator.make_fnr(random.Random(3), born, female)


@pytest.mark.parametrize(
    ("born", "female", "outcome"),
    [
        (date(1980, 1, 1), True, []),  # 42: screened
        (date(1997, 6, 1), True, []),  # 25 on the day
        (date(1952, 6, 2), True, []),  # 69, a day before turning 70
        (date(1997, 6, 2), True, ["HPV_SCREENING"]),  # 24
        (date(1952, 6, 1), True, ["HPV_SCREENING"]),  # 70
        (date(1980, 1, 1), False, ["HPV_SCREENING"]),  # a man
    ],
)
def test_hpv_analyses_only_under_the_screening_criteria(
    born: date, female: bool, outcome: list[str]
) -> None:
    hpv = bill(line("NOR99801", "50.00"), patient=hpv_patient(born, female=female))
    result = evaluate(hpv, book=REPEATABLE_BOOK)
    assert codes(result) == [outcome]
    if outcome:
        (finding,) = result.bills[0].findings
        assert finding.rule_id == "LAB-010" and "kvinner 25–69 år" in finding.text
        assert hpv.patient.id not in finding.text


def test_hpv_for_an_id_without_sex_and_age_is_refused_and_other_codes_pass() -> None:
    unknown = bill(line("NOR99801", "50.00"), patient="99999999999")
    assert codes(evaluate(unknown, book=REPEATABLE_BOOK)) == [["HPV_SCREENING"]]
    man = hpv_patient(date(1980, 1, 1), female=False)
    assert codes(evaluate(bill(line("NPU19748", "6.82"), patient=man), book=REPEATABLE_BOOK)) == [
        []
    ]
