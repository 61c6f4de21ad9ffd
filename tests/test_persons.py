"""National identity numbers: birth date, age and sex from fødselsnummer, D-, H- and Tenor
numbers, with the century from the individnummer."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.claims.persons import age_on, birth_date, is_female
from gateway.testing.claims import make_fnr

# make_fnr can encode birth years 1854-2039.
BIRTH_DATES = st.dates(min_value=date(1854, 1, 1), max_value=date(2039, 12, 31))


def _shift(fnr: str, *, day: int = 0, month: int = 0) -> str:
    """The same number with an offset on day or month (control digits left as they are)."""
    dd, mm = int(fnr[0:2]) + day, int(fnr[2:4]) + month
    return f"{dd:02d}{mm:02d}{fnr[4:]}"


@settings(max_examples=300)
@given(born=BIRTH_DATES, female=st.booleans(), seed=st.integers(0, 2**32), synthetic=st.booleans())
def test_birth_date_and_sex_of_generated_numbers(
    born: date, female: bool, seed: int, synthetic: bool
) -> None:
    fnr = make_fnr(random.Random(seed), born, female, synthetic=synthetic)
    assert birth_date(fnr) == born
    assert is_female(fnr) is female


@settings(max_examples=200)
@given(born=BIRTH_DATES, female=st.booleans(), seed=st.integers(0, 2**32))
def test_d_and_h_numbers_carry_the_same_date(born: date, female: bool, seed: int) -> None:
    ordinary = make_fnr(random.Random(seed), born, female, synthetic=False)
    tenor = make_fnr(random.Random(seed), born, female)
    assert birth_date(_shift(ordinary, day=40)) == born  # D-nummer
    assert birth_date(_shift(ordinary, month=40)) == born  # H-nummer
    assert birth_date(_shift(tenor, day=40)) == born  # Tenor D-nummer (day + 40, month + 80)
    assert is_female(_shift(ordinary, day=40)) is female


@settings(max_examples=200)
@given(
    born=BIRTH_DATES,
    seed=st.integers(0, 2**32),
    days=st.integers(0, 120 * 366),
)
def test_age_is_whole_years_since_birth(born: date, seed: int, days: int) -> None:
    fnr = make_fnr(random.Random(seed), born, female=True)
    on = born + timedelta(days=days)
    age = age_on(fnr, on)
    assert age is not None and age >= 0
    # the last birthday is on or before ``on``, the next one after it
    assert _anniversary(born, born.year + age) <= on < _anniversary(born, born.year + age + 1)


def _anniversary(born: date, year: int) -> date:
    try:
        return born.replace(year=year)
    except ValueError:  # 29 February in a year without one: the birthday is 1 March
        return date(year, 3, 1)


@pytest.mark.parametrize(
    ("individual", "yy", "year"),
    [
        ("000", "00", 1900),
        ("499", "99", 1999),
        ("500", "54", 1854),
        ("749", "99", 1899),
        ("500", "00", 2000),
        ("999", "39", 2039),
        ("900", "40", 1940),
        ("999", "99", 1999),
    ],
)
def test_century_comes_from_the_individual_number(individual: str, yy: str, year: int) -> None:
    assert birth_date(f"0101{yy}{individual}00") == date(year, 1, 1)


@pytest.mark.parametrize(
    "national_id",
    [
        "",
        "0101701234",  # 10 digits
        "010170123456",  # 12 digits
        "0101701234a",
        "０１０１７０１２３４５",  # full-width digits
        "3102701234 ",
        "31047012345",  # 31 April
        "29027012345",  # 1970 was no leap year
        "01137012345",  # month 13
        "01217012345",  # month 21: no known offset
        "00017012345",  # day 0
        "01014075045",  # individnummer 750-899 with a year 40-99: never issued
        "01015050045",  # 500-749 with a year 40-53: never issued
    ],
)
def test_malformed_numbers_have_no_birth_date(national_id: str) -> None:
    assert birth_date(national_id) is None
    assert age_on(national_id, date(2026, 1, 1)) is None
    assert is_female(national_id) is None


def test_leap_day_birthday_and_days_before_birth() -> None:
    fnr = make_fnr(random.Random(1), date(2008, 2, 29), female=False)
    assert age_on(fnr, date(2024, 2, 28)) == 15
    assert age_on(fnr, date(2024, 2, 29)) == 16
    assert age_on(fnr, date(2023, 2, 28)) == 14
    assert age_on(fnr, date(2023, 3, 1)) == 15
    assert age_on(fnr, date(2008, 2, 28)) is None
    assert age_on(fnr, date(2008, 2, 29)) == 0


def test_sixteenth_birthday_is_the_boundary() -> None:
    fnr = make_fnr(random.Random(2), date(2010, 6, 15), female=True)
    assert age_on(fnr, date(2026, 6, 14)) == 15
    assert age_on(fnr, date(2026, 6, 15)) == 16
