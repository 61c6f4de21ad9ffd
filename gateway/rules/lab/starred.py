"""STJERNEKODE: starred NLK codes (simple biochemistry financed through ISF) are not refunded.

Decision: the bill is rejected naming the starred codes (as for invalid codes, so the sender
learns of it in the AppRec); it is resent without them.
"""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.lab.common import LAB_PRACTITIONERS, NLK_START, applies, lines, listed


def _starred(bill: Enkeltregning, index: int, ctx: ClaimContext) -> Facts | None:
    if not applies(bill, ctx):
        return None
    starred = [
        takst.kode for takst, entry in lines(bill, ctx) if entry is not None and entry.starred
    ]
    if not starred:
        return None
    return {"koder": listed(starred)}


STJERNEKODE = Rule(
    id="LAB-002",
    version=1,
    code="STJERNEKODE",
    text=(
        "Kode {koder} er en stjernekode i NLK og gir ikke rett til refusjon: enkle analyser "
        "merket med stjerne finansieres gjennom innsatsstyrt finansiering (ISF)."
    ),
    guidance="Fjern stjernekodene fra regningen og send den på nytt.",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=NLK_START,
    valid_to=None,
    check=_starred,
    practitioners=LAB_PRACTITIONERS,
    basis="Katalog LAB-005 (R, stjernekode finnes); stjernekoder refunderes ikke",
)
