"""What a Norwegian national identity number says about its person: birth date, age and sex.

Handles the ordinary fødselsnummer, the D-nummer (day + 40), the H-nummer (month + 40, the
health sector's help number; NAV's synthetic test numbers use the same offset) and Skatteetaten's
Tenor synthetic test persons (month + 80, also combined with a D-nummer day). The century comes
from the individnummer (digits 7-9), by Skatteetaten's allocation:

=================  ===============  ==========
individnummer      two-digit year   born
=================  ===============  ==========
000-499            00-99            1900-1999
500-749            54-99            1854-1899
500-999            00-39            2000-2039
900-999            40-99            1940-1999
=================  ===============  ==========

Other combinations (for example 750-899 with a year of 40-99) are never issued: no birth date.

The control digits are not checked here. A number with wrong control digits still carries its
date, and from 2032 Skatteetaten lets the first control digit vary, so a date lookup should not
depend on them; validating the number is the job of the schema and format checks.

Privacy: the numbers are personal data. Nothing here logs them, and no exception carries one.
"""

from __future__ import annotations

from datetime import date

__all__ = ["age_on", "birth_date", "is_female"]

_D_NUMBER_DAY_OFFSET = 40
_H_NUMBER_MONTH_OFFSET = 40
_TENOR_MONTH_OFFSET = 80


def _digits(national_id: str) -> str | None:
    value = national_id.strip()
    if len(value) != 11 or not value.isascii() or not value.isdigit():
        return None
    return value


def _birth_year(individual: int, yy: int) -> int | None:
    if individual <= 499:
        return 1900 + yy
    if individual <= 749 and yy >= 54:
        return 1800 + yy
    if individual >= 500 and yy <= 39:
        return 2000 + yy
    if individual >= 900 and yy >= 40:
        return 1900 + yy
    return None


def birth_date(national_id: str) -> date | None:
    """The birth date a fødselsnummer, D-, H- or Tenor test number encodes, else ``None``.

    ``None`` for anything that is not 11 digits, a day or month outside every known form, an
    impossible date (31 April) or an individnummer that does not encode a century for the year.
    """
    digits = _digits(national_id)
    if digits is None:
        return None
    day, month = int(digits[0:2]), int(digits[2:4])
    yy, individual = int(digits[4:6]), int(digits[6:9])
    if day > _D_NUMBER_DAY_OFFSET:
        day -= _D_NUMBER_DAY_OFFSET
    if month > _TENOR_MONTH_OFFSET:
        month -= _TENOR_MONTH_OFFSET
    elif month > _H_NUMBER_MONTH_OFFSET:
        month -= _H_NUMBER_MONTH_OFFSET
    year = _birth_year(individual, yy)
    if year is None or not 1 <= month <= 12 or day < 1:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None  # e.g. 30 February; the message would name the number, so none is kept


def age_on(national_id: str, day: date) -> int | None:
    """The person's age in whole years on ``day``, or ``None`` if unknown or not yet born.

    A person born on 29 February becomes a year older on 1 March in years without one.
    """
    born = birth_date(national_id)
    if born is None or day < born:
        return None
    before_birthday = (day.month, day.day) < (born.month, born.day)
    return day.year - born.year - (1 if before_birthday else 0)


def is_female(national_id: str) -> bool | None:
    """Whether the number is a woman's (third individnummer digit even), ``None`` if unknown.

    Numbers issued from 2032 no longer encode sex; for those this answer means nothing.
    """
    digits = _digits(national_id)
    if digits is None or birth_date(digits) is None:
        return None
    return int(digits[8]) % 2 == 0
