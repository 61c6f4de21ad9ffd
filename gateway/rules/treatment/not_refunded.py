"""IKKE_REFUSJON: 2bd (a fastlege's supplement for a patient outside the list scheme) is not
refunded by the trygd, although the tariff prints a refund: claimed with an amount, refused."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import kroner

NOT_REFUNDED = frozenset({"2bd"})


def _refund_claimed(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    if bill.kreditering:
        return None
    for takst in bill.behandling.takster:
        if takst.kode.lower() in NOT_REFUNDED and takst.verdi > Decimal(0):
            return {"takst": takst.kode, "belop": kroner(takst.verdi)}
    return None


NOT_REFUNDED_TAKST = Rule(
    id="TRT-002",
    version=1,
    code="IKKE_REFUSJON",
    text="Takst {takst} refunderes ikke av trygden; regningen krever {belop} kr for den.",
    guidance="Krev ikke refusjon for 2bd; den betales av pasienten (ikke ved øyeblikkelig hjelp).",
    basis=(
        "EGEN-013 (R): 2bd not refunded by the trygd (Spesialisttariffen m-866, which prints "
        "a refusjon all the same); outcome I"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_refund_claimed,
    practitioners=frozenset({"lege"}),
    codes=NOT_REFUNDED,
)
