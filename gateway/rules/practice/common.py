"""What the practice-register rules share: the register row a bill is judged by, and whether
a bill claims any refund at all.

Every register rule stands aside when no register has been imported (``ctx.practices`` empty:
a gateway without one must not reject everything) and for credits (a credit withdraws an
approved bill; the register does not decide whether it may be withdrawn).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from gateway.claims.model import Enkeltregning
from gateway.practices.model import Period, Practice
from gateway.rules.base import ClaimContext

#: The first day the register rules are in force; the sources give no start for most of them.
EARLIEST = date(2000, 1, 1)

ZERO = Decimal(0)


def register_applies(bill: Enkeltregning, ctx: ClaimContext) -> bool:
    """Whether the register rules look at this bill at all."""
    return bool(ctx.practices) and not bill.kreditering


def practice_on_treatment(bill: Enkeltregning, ctx: ClaimContext) -> Practice | None:
    """The sender's register row valid on the bill's treatment date."""
    return ctx.practices.on(ctx.sender_her, bill.dato_tid.date())


def claims_refund(bill: Enkeltregning) -> bool:
    """Whether the bill asks for money (a bill of zeros only reports egenandeler)."""
    return bill.behandling.sum_refusjon > ZERO or any(
        t.verdi > ZERO for t in bill.behandling.takster
    )


def period_text(period: Period | None) -> str:
    """``fra 01.01.2015`` / ``01.01.2015–31.12.2022`` / ``ingen``, as the texts show it."""
    if period is None:
        return "ingen"
    if period.end is None:
        return f"fra {period.start:%d.%m.%Y}"
    return f"{period.start:%d.%m.%Y}–{period.end:%d.%m.%Y}"
