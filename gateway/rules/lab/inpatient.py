"""INNLAGT: analyses for an inpatient (innlagt pasient) are not refunded.

The BKM (bkm-2006-12-20.xsd) has no inpatient flag. Our convention: the bill carries a
``Prosedyrekode`` whose ``V`` is ``INNLAGT`` (any code system, any case). Such a bill is rejected;
without the marker nothing can be known and the rule stays silent.
"""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.lab.common import (
    INPATIENT_MARKER,
    LAB_PRACTITIONERS,
    NLK_START,
    applies,
    listed,
)


def _inpatient(bill: Enkeltregning, index: int, ctx: ClaimContext) -> Facts | None:
    if not applies(bill, ctx):
        return None
    marked = any(
        code.value.strip().upper() == INPATIENT_MARKER for code in bill.behandling.prosedyrekoder
    )
    if not marked:
        return None
    return {
        "koder": listed(t.kode for t in bill.behandling.takster),
        "markering": INPATIENT_MARKER,
    }


INNLAGT = Rule(
    id="LAB-003",
    version=1,
    code="INNLAGT",
    text=(
        "Regningen er merket som analyser for innlagt pasient (prosedyrekode {markering}). "
        "Analyser for innlagte pasienter ({koder}) gir ikke rett til refusjon fra Helfo."
    ),
    guidance=(
        "Analyser for innlagte pasienter dekkes av sykehuset og skal ikke kreves refundert. "
        "Send bare polikliniske analyser."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=NLK_START,
    valid_to=None,
    check=_inpatient,
    practitioners=LAB_PRACTITIONERS,
    basis=(
        "Analyser for innlagte refunderes ikke; markering med prosedyrekode "
        "INNLAGT er gatewayens egen konvensjon (I), BKM har intet slikt felt"
    ),
)
