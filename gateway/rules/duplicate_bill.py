"""DUPLIKAT: a bill whose Guid is already approved, or repeated within the same message."""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity


def _duplicate_guid(bill: Enkeltregning, index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering:
        return None  # a credit names its original by Guid on purpose; see credit_whole_bill
    for earlier in ctx.krav.regninger[:index]:
        if earlier.guid == bill.guid and not earlier.kreditering:
            return {"guid": bill.guid, "tidligere": earlier.regning_nr, "hvor": "samme melding"}
    stored = ctx.history.approved_bill(ctx.sender_her, bill.guid)
    if stored is not None and not stored.credited:
        return {"guid": bill.guid, "tidligere": stored.regning_nr, "hvor": "tidligere melding"}
    return None


DUPLICATE_BILL = Rule(
    id="DUP-001",
    version=1,
    code="DUPLIKAT",
    text=(
        "Duplikatregning: regningen med Guid {guid} er allerede mottatt som regningsnummer "
        "{tidligere} ({hvor})."
    ),
    guidance=(
        "Send ikke en godkjent regning på nytt. Skal den rettes, krediter den først og send "
        "deretter den rettede regningen."
    ),
    basis="CONT-004 (R), TECH-005 (S): a bill (Guid) is approved once",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_duplicate_guid,
)
