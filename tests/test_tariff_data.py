"""The bundled tariff data (fixtures/tariffs) is consistent with itself, with the public facts it
encodes and with the claim generator: every claim the generator makes for 2026 is valid against
it (codes known on the date, amounts equal, combinations allowed, lab amounts = category rate)."""

from __future__ import annotations

import csv
import inspect
import random
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.claims.model import BehandlerKrav, Enkeltregning
from gateway.tariffs.loading import BUNDLED_TARIFFS, FILE_NAMES, load_book_from_dir
from gateway.tariffs.model import TakstEntry, TariffBook
from gateway.testing import claims
from gateway.testing.claims import (
    Practitioner,
    default_receiver,
    default_sender,
    make_claim,
)

BOOK: TariffBook = load_book_from_dir(BUNDLED_TARIFFS)
YEARS = range(2021, 2027)  # the years rates must exist for: NLK public facts up to the fixtures
SEEDS = range(150)
TAKST_PRACTITIONERS: tuple[Practitioner, ...] = ("tannlege", "lege", "psykolog")


def generated(practitioner: Practitioner) -> Iterator[Enkeltregning]:
    """Bills the generator makes for ``practitioner``, spread over all of 2026."""
    for seed in SEEDS:
        start = datetime(2026, 1 + seed % 12, 1 + seed % 28, 8, 0)
        _, krav = make_claim(
            rng=random.Random(seed),
            practitioner=practitioner,
            bills=4,
            sender=default_sender(),
            receiver=default_receiver(),
            start=start,
        )
        yield from krav.regninger


def entry_for(code: str, practitioner: str, day: date) -> TakstEntry:
    entry = BOOK.takst(code, practitioner, day)
    assert entry is not None, f"{practitioner} takst {code} is not valid on {day}"
    return entry


def raw_rows(kind: str) -> list[dict[str, str]]:
    with (BUNDLED_TARIFFS / FILE_NAMES[kind]).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# --- The generator's claims are valid against the data -----------------------------------------


@pytest.mark.parametrize("practitioner", TAKST_PRACTITIONERS)
def test_generated_takster_exist_with_the_generators_amounts(practitioner: Practitioner) -> None:
    seen: set[str] = set()
    for bill in generated(practitioner):
        day = bill.dato_tid.date()
        exempt = bill.behandling.kode_egenandel is not None
        for takst in bill.behandling.takster:
            entry = entry_for(takst.kode, practitioner, day)
            expected = entry.honorar if exempt else entry.refusjon
            assert takst.verdi == expected, (practitioner, takst.kode, day, takst.verdi)
            assert entry.honorar is not None and entry.egenandel is not None
            assert entry.honorar - entry.egenandel == entry.refusjon  # refund = honorar − egenandel
            seen.add(takst.kode)
    assert seen, "the generator made no takster"


@pytest.mark.parametrize(
    ("practitioner", "table"),
    [
        ("tannlege", claims.DENTAL),
        ("lege", claims.PHYSICIAN),
        ("psykolog", claims.PSYCHOLOGIST),
    ],
)
def test_every_generator_rate_is_in_the_table_all_2026(
    practitioner: str, table: dict[str, claims._Rate]
) -> None:
    for code, rate in table.items():
        for month in range(1, 13):
            for day in (date(2026, month, 1), date(2026, month, 28)):
                entry = entry_for(code, practitioner, day)
                assert (entry.refusjon, entry.honorar) == (rate.refusjon, rate.honorar), code


@pytest.mark.parametrize("practitioner", TAKST_PRACTITIONERS)
def test_generated_bills_break_no_tariff_rule_in_the_data(practitioner: Practitioner) -> None:
    """Combinations, companions, repetitions and diagnosis as the data states them."""
    for bill in generated(practitioner):
        day = bill.dato_tid.date()
        units: dict[str, int] = {}
        for takst in bill.behandling.takster:
            units[takst.kode.lower()] = units.get(takst.kode.lower(), 0) + takst.antall
        entries = {code: entry_for(code, practitioner, day) for code in units}
        for code, entry in entries.items():
            others = set(units) - {code}
            assert not (entry.invalid_with_all and others), (code, others)
            named = {c.lower() for c in entry.invalid_with} & others
            named_back = {o for o in others if code in {c.lower() for c in entries[o].invalid_with}}
            assert not named and not named_back, (code, named | named_back)
            if entry.requires_takst:
                assert {c.lower() for c in entry.requires_takst} & others, code
            if entry.max_repetitions is not None:
                assert units[code] <= 1 + entry.max_repetitions, (code, units[code])
            if entry.requires_diagnosis:
                assert bill.behandling.diagnoser, code
            assert not entry.requires_procedure or bill.behandling.prosedyrekoder, code


def test_generated_lab_amounts_are_the_category_rate_of_the_year() -> None:
    seen: set[str] = set()
    for bill in generated("lab"):
        day = bill.dato_tid.date()
        for takst in bill.behandling.takster:
            entry = BOOK.nlk(takst.kode, day)
            assert entry is not None, f"NLK {takst.kode} not valid on {day}"
            assert not entry.starred and entry.fagomrade != "MG", takst.kode
            rate = BOOK.nlk_rate(BOOK.category_of(entry, day), day.year)
            assert rate is not None and takst.verdi == rate.kroner, (takst.kode, day)
            seen.add(takst.kode)
    assert seen == set(claims.LAB)


def test_generator_amounts_marked_illustrative_are_illustrative_in_the_data() -> None:
    source = inspect.getsource(claims)
    marked = set(re.findall(r'"(\w+)": _rate\([^)]*\),\s*# ILLUSTRATIVE', source))
    assert {"501", "502", "423", "2cd", "12"} <= marked
    on = date(2026, 10, 1)
    for row in raw_rows("takster"):
        if row["code"] not in marked or row["practitioner"] not in TAKST_PRACTITIONERS:
            continue
        valid_to = date.fromisoformat(row["valid_to"]) if row["valid_to"] else None
        if date.fromisoformat(row["valid_from"]) <= on and (valid_to is None or on <= valid_to):
            assert row["confidence"] == "illustrative", row["code"]


def _time_need(bill: Enkeltregning) -> int:
    """Minutes a dental bill requires, as the README defines it (time_based alone: 1 minute)."""
    total = 0
    for takst in bill.behandling.takster:
        entry = entry_for(takst.kode, "tannlege", bill.dato_tid.date())
        if entry.min_minutes is not None:
            total += entry.min_minutes + (takst.antall - 1) * (entry.minutes_per_repetition or 0)
        elif entry.time_based:
            total += 1
    return total


def test_generated_dental_bills_leave_each_other_the_time_they_need() -> None:
    for seed in SEEDS:
        _, krav = make_claim(
            rng=random.Random(seed),
            practitioner="tannlege",
            bills=6,
            sender=default_sender(),
            receiver=default_receiver(),
            start=datetime(2026, 10, 5, 8),
        )
        bills: BehandlerKrav = krav
        for earlier, later in zip(bills.regninger, bills.regninger[1:], strict=False):
            need = _time_need(earlier)
            if need and _time_need(later):
                assert later.dato_tid >= earlier.dato_tid + timedelta(minutes=need)


# --- The NLK register and rates ----------------------------------------------------------------


def test_every_category_a_code_is_paid_by_has_a_rate_for_every_year() -> None:
    categories: set[str] = set()
    for entry in BOOK.nlk_codes:
        categories.add(entry.category)
        categories.add(BOOK.category_of(entry, entry.valid_from))
    for category in sorted(categories):
        for year in YEARS:
            assert BOOK.nlk_rate(category, year) is not None, (category, year)


def test_register_is_consistent() -> None:
    known = {e.code.upper() for e in BOOK.nlk_codes}
    for entry in BOOK.nlk_codes:
        prefix = re.fullmatch(r"([A-Z]+)\d+", entry.category)
        assert prefix is not None and prefix.group(1) == entry.fagomrade, entry.code
        assert entry.replaces is None or entry.replaces.upper() in known, entry.code
        if entry.valid_from > date(2018, 1, 1) and entry.replaces is None:
            assert entry.category == f"{entry.fagomrade}2", f"new code {entry.code}"
        assert not entry.pharmacogenetic or entry.fagomrade == "KF", entry.code


def test_register_has_what_the_lab_rules_need() -> None:
    codes = BOOK.nlk_codes
    today = date(2026, 10, 1)
    assert any(e.starred and e.valid_on(today) for e in codes)
    genetics = [e for e in codes if e.fagomrade == "MG" and e.valid_on(today)]
    assert {e.category for e in genetics} >= {"MG1", "MG2"}
    assert any(e.pharmacogenetic and e.valid_on(today) for e in codes)
    assert any(e.valid_to is not None and e.valid_to < today and e.replaces is None for e in codes)
    for code in ("NPU21747", "NPU26765", "NPU20200"):
        entry = BOOK.nlk(code, today)
        assert entry is not None and entry.list_code
    replacing = [e for e in codes if e.replaces]
    assert replacing
    for entry in replacing:
        assert BOOK.category_of(entry, today) != entry.category
    fields_with_new_codes = {
        e.fagomrade for e in codes if e.valid_from > date(2018, 1, 1) and e.replaces is None
    }
    assert fields_with_new_codes >= {"MB", "MM", "KF", "IT", "MG"}


def test_rates_keep_the_public_facts() -> None:
    assert BOOK.nlk_rate("KF1", 2021) is not None
    facts = {("KF1", 2021): "11.75", ("KF1", 2022): "11.89", ("MB2", 2022): "6.82",
             ("IT5", 2021): "74.01", ("MM5", 2022): "123.18"}  # fmt: skip
    for (category, year), kroner in facts.items():
        rate = BOOK.nlk_rate(category, year)
        assert rate is not None and rate.kroner == Decimal(kroner)
    for row in raw_rows("nlk_rates"):
        if row["confidence"].startswith("carried forward from "):
            source_year = int(row["confidence"].rsplit(" ", 1)[1])
            earlier = BOOK.nlk_rate(row["category"], source_year)
            assert earlier is not None and earlier.kroner == Decimal(row["kroner"]), row
            assert source_year < int(row["year"])


# --- The takst table encodes the catalogue's facts ------------------------------------------------


def test_dental_time_facts() -> None:
    on = date(2026, 10, 1)
    five, hundred_one, perio = (entry_for(c, "tannlege", on) for c in ("5", "101", "501"))
    assert five.min_minutes == 11  # "more than 10 minutes"
    assert (hundred_one.min_minutes, hundred_one.minutes_per_repetition) == (20, 21)
    assert hundred_one.max_repetitions == 1
    assert (perio.min_minutes, perio.minutes_per_repetition, perio.max_per_year) == (30, 30, 14)
    assert perio.max_per_year_group == frozenset({"501", "502"})
    assert perio.max_per_year_per_patient
    assert entry_for("502", "tannlege", on).max_per_year_group == frozenset({"501", "502"})
    assert entry_for("604e", "kjeveortoped", on).min_minutes == 45
    for code in ("201", "202", "203"):
        assert entry_for(code, "tannlege", on).time_based
    material = entry_for("423", "tannlege", on)
    assert not material.time_based and material.min_minutes is None
    assert BOOK.takst("2", "tannpleier", on) is None  # takst 2 is not for tannpleier


def test_physician_facts() -> None:
    on = date(2026, 10, 1)
    for code in ("1bd", "1bk"):
        assert entry_for(code, "lege", on).invalid_with_all
    assert entry_for("1be", "lege", date(2022, 1, 1)).invalid_with_all
    for code in ("2cd", "2cdd", "2ck", "2dd", "2dk", "2nk", "2p", "3bd", "7", "11cd", "11ck",
                 "11dd", "11dk", "11e", "11f", "11gd", "11hd", "11id", "11nk", "12bd", "12cd",
                 "701c"):  # fmt: skip
        assert entry_for(code, "lege", on).requires_takst, code
        assert BOOK.takst(code, "lege", date(2017, 11, 30)) is None
    assert all(e.requires_diagnosis for e in BOOK.takster if e.practitioner == "lege")
    k01a = entry_for("K01a", "lege", on)
    assert "3ad" not in k01a.invalid_with and "K01d" in k01a.invalid_with
    assert k01a.max_per_year == 500 and not k01a.max_per_year_per_patient
    assert "706f" in entry_for("705g", "lege", on).invalid_with


def test_psychologist_takst_12_at_most_8_a_year() -> None:
    twelve = entry_for("12", "psykolog", date(2026, 10, 1))
    assert twelve.max_per_year == 8 and twelve.max_per_year_per_patient


def test_every_row_has_a_source_and_a_confidence() -> None:
    for kind in FILE_NAMES:
        for row in raw_rows(kind):
            assert row["source"].strip() and row["confidence"].strip(), (kind, row)


def test_bundled_directory_is_the_project_fixtures() -> None:
    assert Path(__file__).resolve().parents[1] / "fixtures" / "tariffs" == BUNDLED_TARIFFS
    assert (BUNDLED_TARIFFS / "README.md").is_file()
