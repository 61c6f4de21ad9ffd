"""NLK_REPETISJON: a code that may not repeat is paid once per bill.

List codes (NPU21747, NPU26765, NPU20200, or ``list_code`` in the register) may repeat as many
times as panels, set-ups or antigens; unspecific codes, blood-compatibility tests (per blood
unit) and verification measurements may repeat too (``common.may_repeat``). Any other code
claimed with ``Antall`` > 1, or on more than one line of the bill, is paid once: decision per the
catalogue (LAB-006, outcome ADJUST), the bill is approved with the repeats taken off (the first
line's ``Verdi`` once per code is kept).
"""

from __future__ import annotations

from decimal import Decimal

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Hit, Rule, Scope, Severity
from gateway.rules.lab.common import (
    LAB_PRACTITIONERS,
    NLK_START,
    applies,
    kroner,
    lines,
    may_repeat,
)


def _repeated(bill: Enkeltregning, index: int, ctx: ClaimContext) -> Hit | None:
    if not applies(bill, ctx):
        return None
    units: dict[str, int] = {}
    shown: dict[str, str] = {}
    excess = Decimal("0")
    for takst, entry in lines(bill, ctx):
        if may_repeat(takst.kode, entry):
            continue
        code = takst.kode.upper()
        paid_before = code in units
        units[code] = units.get(code, 0) + takst.antall
        shown.setdefault(code, takst.kode)
        extra = takst.antall if paid_before else takst.antall - 1
        excess += takst.verdi * extra
    repeated = [code for code, count in units.items() if count > 1]
    if not repeated:
        return None
    approved = max(Decimal("0.00"), bill.behandling.sum_refusjon - excess)
    return Hit(
        facts={
            "koder": ", ".join(f"{shown[code]} × {units[code]}" for code in repeated),
            "fratrukket": kroner(excess),
            "godkjent": kroner(approved),
        },
        approved_amount=approved,
    )


NLK_REPETISJON = Rule(
    id="LAB-006",
    version=2,
    code="NLK_REPETISJON",
    text=(
        "Kode {koder} er krevd mer enn én gang på regningen. Bare listekoder, uspesifikke koder, "
        "forlikelighetsprøver (per blodenhet) og verifikasjonsmålinger kan gjentas; de øvrige "
        "refunderes én gang. {fratrukket} kr er trukket fra, godkjent {godkjent} kr."
    ),
    guidance=(
        "Krev hver analyse med antall 1. Listekodene kan kreves med antall lik antall paneler, "
        "oppsett eller antigener, forlikelighetsprøver med antall blodenheter."
    ),
    severity=Severity.ADJUST,
    scope=Scope.BILL,
    valid_from=NLK_START,
    valid_to=None,
    check=_repeated,
    practitioners=LAB_PRACTITIONERS,
    basis=(
        "Katalog LAB-006 (R delvis, utfall ADJUST (I)): en kode kan gjentas med begrensninger; "
        "listekodene kan gjentas, og uspesifikke koder, forlikelighetsprøver per enhet og "
        "verifikasjonsmålinger (kodene illustrative, I)"
    ),
)
