"""EGENANDEL_REFUSJON: senders that report egenandeler only are never paid a refund.

Rehabilitation institutions and treatment travel abroad report patients' co-payments for the
frikort ceiling; their bills carry amounts of 0. A bill of theirs that claims a refund is
refused with this code, whatever else it says.
"""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.claims.practitioner import EGENANDEL_ONLY
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.practice.common import EARLIEST, ZERO, claims_refund
from gateway.rules.tariff.support import kroner


def _refund_claimed(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering or not claims_refund(bill):
        return None
    claimed = sum((t.verdi * t.antall for t in bill.behandling.takster), ZERO)
    return {
        "belop": kroner(max(claimed, bill.behandling.sum_refusjon)),
        "praksis": ctx.practice.kind.name if ctx.practice is not None else str(ctx.practitioner),
    }


EGENANDEL_ONLY_REFUND = Rule(
    id="PRAC-007",
    version=1,
    code="EGENANDEL_REFUSJON",
    text=(
        "{praksis} rapporterer bare egenandeler og får ikke refusjon; regningen krever "
        "{belop} kr."
    ),
    guidance="Send regningene med refusjon 0: bare den betalte egenandelen rapporteres.",
    basis=(
        "CONT-014/CONT-015 (R): rehabiliteringsinstitusjoner and behandlingsreiser i utlandet "
        "report egenandeler only (avdeling, RESH, refusjon 0) and are never paid a refund (I)"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_refund_claimed,
    practitioners=EGENANDEL_ONLY,
)
