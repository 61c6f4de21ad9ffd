"""KUHR merknad 766: a bill may not be dated after the moment the claim was received."""

from __future__ import annotations

from datetime import date, timedelta

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity

# Senders' clocks drift; a few minutes ahead is a clock, not a claim for future treatment.
CLOCK_TOLERANCE = timedelta(minutes=10)


def _dated_in_future(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.dato_tid <= ctx.received_at + CLOCK_TOLERANCE:
        return None
    return {
        "dato_tid": bill.dato_tid.isoformat(sep=" ", timespec="minutes"),
        "mottatt": ctx.received_at.isoformat(sep=" ", timespec="minutes"),
    }


FUTURE_DATE = Rule(
    id="DATE-766",
    version=1,
    code="766",
    text="Enkeltregning er datert frem i tid ({dato_tid}, mottatt {mottatt}).",
    guidance="Send regningen etter at behandlingen er utført, med faktisk starttidspunkt.",
    basis="CONT-003 (S): KUHR merknad 766 «Enkeltregning er datert frem i tid»",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_dated_in_future,
)
