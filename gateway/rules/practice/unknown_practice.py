"""UKJENT_PRAKSIS: with a practice register in force, a sender it does not know is refused."""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.practice.common import EARLIEST, register_applies


def _unknown(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if not register_applies(bill, ctx) or ctx.practices.knows(ctx.sender_her):
        return None
    return {"avsender": ctx.sender_her or "ukjent"}


UNKNOWN_PRACTICE = Rule(
    id="PRAC-001",
    version=1,
    code="UKJENT_PRAKSIS",
    text="Avsender (HER-id {avsender}) er ikke registrert i praksisregisteret.",
    guidance=(
        "Send kravet fra praksisens registrerte HER-id, eller be Helfo registrere praksisen "
        "før du sender krav."
    ),
    basis=(
        "TECH-004 (S): KUHR refuses a claim whose praksisId it does not know "
        "(UKJENT_PRAKSISID); answered per bill here (I)"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_unknown,
)
