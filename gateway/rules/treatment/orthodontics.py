"""EN_PER_SEANSE: one of the orthodontic treatment controls 604a-604d per session (bill)."""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import listing
from gateway.rules.treatment.code_sets import codes_on, shown, units_of

_CONTROLS = ("604a", "604b", "604c", "604d")


def _more_than_one(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    if bill.kreditering:
        return None
    units = units_of(bill, _CONTROLS)
    if units <= 1:
        return None
    return {"koder": listing(shown(codes_on(bill), _CONTROLS)), "antall": str(units)}


ONE_CONTROL_PER_SESSION = Rule(
    id="TRT-008",
    version=1,
    code="EN_PER_SEANSE",
    text=(
        "Behandlingskontroll {koder} er krevd {antall} ganger på regningen; 604a–604d kan "
        "bare brukes én gang per seanse."
    ),
    guidance="Krev én behandlingskontroll (604a–d) per seanse.",
    basis="FREQ-004 (R): 604a-d once per seanse (Helfo takstveiledning, takst 604)",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_more_than_one,
    practitioners=frozenset({"kjeveortoped"}),
    codes=frozenset(_CONTROLS),
)
