"""Statistics periods: a year ("2023"), a tertial ("2023-T1".."2023-T3") or a month ("2023-05").

A period is the half-open date range ``[start, end)``; a bill belongs to it when its treatment
time (``DatoTid``) falls inside. Tertials follow the Norwegian health statistics: T1 is
January-April, T2 May-August, T3 September-December.

This module also holds ``StatsError``, the one error family of ``gateway.stats`` (re-exported by
``gateway.stats.build``): it sits here because every other stats module imports this one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from gateway.errors import GatewayError

__all__ = ["Period", "StatsError", "parse_period"]


class StatsError(GatewayError):
    """A statistics request or reference import cannot be carried out as given.

    The message names the bad value (a period, a measure, a file, line and column); it never
    carries a national identity number.
    """


_TERTIAL_FIRST_MONTH = {1: 1, 2: 5, 3: 9}
_PATTERN = re.compile(r"^(?P<year>\d{4})(?:-(?:T(?P<tertial>\d)|(?P<month>\d{2})))?$")
_FORMS = '"2023" (year), "2023-T1".."2023-T3" (tertial) or "2023-05" (month)'


@dataclass(frozen=True, slots=True)
class Period:
    """A parsed period: ``text`` as given, dates ``[start, end)``."""

    text: str
    start: date
    end: date

    @property
    def year(self) -> int:
        """The calendar year the period lies in (periods never span years)."""
        return self.start.year


def _add_months(year: int, month: int, months: int) -> date:
    index = year * 12 + (month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def parse_period(text: str) -> Period:
    """Parse ``text`` into a ``Period``; ``StatsError`` naming the value when it is not one."""
    match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise StatsError(f"invalid period {text!r}: expected {_FORMS}")
    year = int(match["year"])
    if year < 1900:
        raise StatsError(f"invalid period {text!r}: year {year} is before 1900")
    if match["tertial"] is not None:
        tertial = int(match["tertial"])
        if tertial not in _TERTIAL_FIRST_MONTH:
            raise StatsError(f"invalid period {text!r}: tertial must be T1, T2 or T3")
        first = _TERTIAL_FIRST_MONTH[tertial]
        return Period(text.strip(), date(year, first, 1), _add_months(year, first, 4))
    if match["month"] is not None:
        month = int(match["month"])
        if not 1 <= month <= 12:
            raise StatsError(f"invalid period {text!r}: month must be 01-12")
        return Period(text.strip(), date(year, month, 1), _add_months(year, month, 1))
    return Period(text.strip(), date(year, 1, 1), date(year + 1, 1, 1))
