"""NLK_BELOP: the claimed amount of an NLK code must be the rate of its refusjonskategori.

For every valid, unstarred code the rate of its payable category (``payable_category``: a
replacing code is paid as the code it replaces) in the analysis year, times ``Antall``, must equal
what is claimed (``Verdi`` per analysis × ``Antall``). A code whose category has no rate for the
year in the tariff book is not checked (nothing to compare with); invalid and starred codes are
left to ``valid_code`` and ``starred``.
"""

from __future__ import annotations

from decimal import Decimal

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.lab.common import (
    LAB_PRACTITIONERS,
    NLK_START,
    applies,
    kroner,
    lines,
    listed,
    payable_category,
)


def _wrong_amount(bill: Enkeltregning, index: int, ctx: ClaimContext) -> Facts | None:
    if not applies(bill, ctx):
        return None
    day = bill.dato_tid.date()
    codes: list[str] = []
    details: list[str] = []
    expected_total = Decimal("0")
    claimed_total = Decimal("0")
    for takst, entry in lines(bill, ctx):
        if entry is None or entry.starred:
            continue
        category = payable_category(ctx.tariffs, entry, day)
        rate = ctx.tariffs.nlk_rate(category, day.year)
        if rate is None or takst.verdi == rate.kroner:
            continue
        expected = rate.kroner * takst.antall
        claimed = takst.verdi * takst.antall
        expected_total += expected
        claimed_total += claimed
        codes.append(takst.kode)
        details.append(
            f"{takst.kode} (kategori {category}): forventet {takst.antall} × "
            f"{kroner(rate.kroner)} = {kroner(expected)} kr, krevd {takst.antall} × "
            f"{kroner(takst.verdi)} = {kroner(claimed)} kr"
        )
    if not details:
        return None
    return {
        "koder": listed(codes),
        "aar": str(day.year),
        "avvik": "; ".join(details),
        "forventet": kroner(expected_total),
        "krevd": kroner(claimed_total),
    }


NLK_BELOP = Rule(
    id="LAB-004",
    version=1,
    code="NLK_BELOP",
    text=(
        "Krevd beløp for kode {koder} er ikke satsen for refusjonskategorien i {aar}: {avvik}. "
        "Forventet {forventet} kr, krevd {krevd} kr."
    ),
    guidance=(
        "Krev satsen for kodens refusjonskategori i analyseåret (per analyse) ganget med antall. "
        "En erstatningskode har samme kategori som koden den erstatter."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=NLK_START,
    valid_to=None,
    check=_wrong_amount,
    practitioners=LAB_PRACTITIONERS,
    basis=(
        "Katalog CALC-008 (S): refusjon per NLK-kode = sats for refusjonskategorien (datert); "
        "feil beløp avvises"
    ),
)
