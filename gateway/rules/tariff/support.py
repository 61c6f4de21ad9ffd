"""What the tariff and amount rules share: when tariff data applies, a bill's takster per code,
and the value of repeated units.

A gateway without imported tariffs must not reject everything, so every rule that reads the
tariff book first asks ``tariff_view``: it answers ``None`` when the practitioner type is not
known, when the type is not one that claims takster (laboratories claim NLK codes, see the lab
family), when the book holds no takst at all for that type, and for credits (a kreditering
withdraws an approved bill; the tariff does not decide whether it may be withdrawn).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from gateway.claims.model import Enkeltregning, Takst
from gateway.rules.base import ClaimContext
from gateway.tariffs.model import PRACTITIONER_TYPES, TakstEntry, TariffBook

#: Practitioner types whose bills carry takster from the takst table (not NLK codes).
TAKST_TYPES = PRACTITIONER_TYPES - {"lab", "medisinsk_genetikk"}

#: The first day any of these rules is in force; the reference gives no start for most of them.
EARLIEST = date(2000, 1, 1)

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def kroner(amount: Decimal) -> str:
    """An amount as the texts show it: two decimals, point as in the messages."""
    return f"{amount.quantize(CENT, ROUND_HALF_UP)}"


def day_text(day: date | datetime) -> str:
    """A date (and time) the Norwegian way: ``03.09.2026`` or ``03.09.2026 kl. 12:00``."""
    if isinstance(day, datetime):
        return f"{day:%d.%m.%Y} kl. {day:%H:%M}"
    return f"{day:%d.%m.%Y}"


def listing(codes: Iterable[str], last: str = "og") -> str:
    """``"a"``, ``"a og b"``, ``"a, b og c"`` (or ``eller`` with ``last="eller"``)."""
    items = list(codes)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


# The practitioner types a book has takster for, per book. A book is immutable and an import
# makes a new one, so the answer is computed once per book; the weak reference makes sure a
# recycled id() of a dropped book is never taken for the old one.
_COVERED: dict[int, tuple[weakref.ref[TariffBook], frozenset[str]]] = {}


def covered_types(book: TariffBook) -> frozenset[str]:
    """The practitioner types ``book`` has at least one takst for."""
    cached = _COVERED.get(id(book))
    if cached is not None and cached[0]() is book:
        return cached[1]
    types = frozenset(entry.practitioner for entry in book.takster)
    for key in [k for k, (ref, _) in _COVERED.items() if ref() is None]:
        del _COVERED[key]
    _COVERED[id(book)] = (weakref.ref(book), types)
    return types


@dataclass(frozen=True, slots=True)
class CodeLines:
    """All lines of one takst code on a bill (a code may appear on several lines)."""

    code: str  # lower-case key
    shown: str  # as the sender wrote it on its first line
    lines: tuple[Takst, ...]

    @property
    def antall(self) -> int:
        return sum(line.antall for line in self.lines)


def by_code(bill: Enkeltregning) -> tuple[CodeLines, ...]:
    """The bill's takst lines grouped per code, in the order the codes first appear."""
    groups: dict[str, list[Takst]] = {}
    for takst in bill.behandling.takster:
        groups.setdefault(takst.kode.lower(), []).append(takst)
    return tuple(CodeLines(code, lines[0].kode, tuple(lines)) for code, lines in groups.items())


@dataclass(frozen=True, slots=True)
class TariffView:
    """The tariff book as one bill sees it: its practitioner type and treatment date."""

    book: TariffBook
    practitioner: str
    on: date

    def entry(self, code: str) -> TakstEntry | None:
        """The takst valid on the treatment date for this practitioner type, if any."""
        return self.book.takst(code, self.practitioner, self.on)


def tariff_view(bill: Enkeltregning, ctx: ClaimContext) -> TariffView | None:
    """The tariff data that applies to ``bill``, or ``None`` when tariff rules must stand aside."""
    practitioner = ctx.practitioner
    if practitioner is None or practitioner not in TAKST_TYPES or bill.kreditering:
        return None
    if practitioner not in covered_types(ctx.tariffs):
        return None
    return TariffView(ctx.tariffs, practitioner, bill.dato_tid.date())


def repetition_factor(antall: int, percent: int | None) -> Decimal:
    """How many full units ``antall`` units are worth: the first in full, every repetition at
    ``percent`` (``None`` = 100 %), KUHR's repetisjonsprosent (CALC-002, CALC-003)."""
    if antall <= 0:
        return Decimal(0)
    share = HUNDRED if percent is None else Decimal(percent)
    return 1 + (antall - 1) * share / HUNDRED


def line_values(lines: Iterable[Takst], percent: int | None, limit: int | None = None) -> Decimal:
    """What a code's lines are worth unit by unit, each at its own ``Verdi``: the first unit in
    full, later units at ``percent``, and units beyond ``limit`` (units in all) not at all."""
    total = Decimal(0)
    seen = 0
    share = HUNDRED if percent is None else Decimal(percent)
    for line in lines:
        units = max(line.antall, 0)
        if limit is not None:
            units = min(units, limit - seen)
        if units <= 0:
            continue
        if seen == 0:
            total += line.verdi
            units -= 1
            seen = 1
        total += line.verdi * units * share / HUNDRED
        seen += units
    return total
