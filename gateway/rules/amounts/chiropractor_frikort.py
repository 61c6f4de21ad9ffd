"""FRIKORT_KIROPRAKTOR: a chiropractor's charge is not an egenandel, so a frikort does not make
it free: a chiropractor's bill that names frikort (kodeverk 7461 F) as its reason is refused."""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.amounts.exemptions import exemption_code
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import EARLIEST


def _frikort(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    if bill.kreditering or exemption_code(bill) != "F":
        return None
    return {"regning": bill.regning_nr}


CHIROPRACTOR_FRIKORT = Rule(
    id="AMT-005",
    version=1,
    code="FRIKORT_KIROPRAKTOR",
    text=(
        "Regning {regning} oppgir frikort som fritak, men hos kiropraktor er betalingen ikke "
        "en egenandel og frikort gjelder ikke."
    ),
    guidance="Send regningen uten fritakskode F; Helfo betaler kiropraktortakstens stønad.",
    basis=(
        "EGEN-010 (R): kiropraktor charges are not egenandeler and do not count toward "
        "frikort (Helfo, regelverk for kiropraktor)"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_frikort,
    practitioners=frozenset({"kiropraktor"}),
)
