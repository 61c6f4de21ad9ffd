"""AMT-004 FEIL_SUMKRAV: a bill's SumKrav/Refusjon may not exceed the sum of its lines
(Verdi x Antall), whatever the tariff says: no reading of the lines makes a larger total right.

Needs no tariff data, only a known practitioner type (the engine's seam tests treat SumKrav as
free-standing when nothing is known about the sender). Where the tariff book covers the type,
AMT-001 judges the sum against the tariff instead, so one error gives one merknad.

Less than the lines is left alone here: repetitions paid at a reduced percentage make a correct
SumKrav smaller, and only the tariff knows by how much (AMT-001 and AMT-002 judge that).
"""

from __future__ import annotations

from decimal import Decimal

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import EARLIEST, kroner, tariff_view
from gateway.tariffs.model import PRACTITIONER_TYPES


def _sum_above_lines(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering or ctx.practitioner is None or tariff_view(bill, ctx) is not None:
        return None
    lines = sum((t.verdi * t.antall for t in bill.behandling.takster), Decimal(0))
    claimed = bill.behandling.sum_refusjon
    if claimed <= lines:
        return None
    return {"krevd": kroner(claimed), "linjer": kroner(lines)}


SUM_ABOVE_LINES = Rule(
    id="AMT-004",
    version=1,
    code="FEIL_SUMKRAV",
    text=(
        "SumKrav ({krevd} kr) er høyere enn summen av takstene på regningen "
        "(beløp x antall = {linjer} kr)."
    ),
    guidance="SumKrav/Refusjon skal være summen av takstenes beløp ganger antall.",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_sum_above_lines,
    practitioners=PRACTITIONER_TYPES,
    basis="CALC-002 (S), CONT-008 (R): SumKrav no higher than the sum of the bill's lines",
)
