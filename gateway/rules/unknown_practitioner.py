"""UKJENT_BEHANDLERTYPE: a bill from a sender whose practitioner type is unknown goes to manual
control (fail closed, issue 12).

The tariff, amount, dental and lab rules need the practitioner type and stand aside without it
(``tariff.support.tariff_view``, ``practitioners=`` on each rule), so such a bill would otherwise
be approved unchecked, placeholder amounts included. It is approved for now but flagged
``kontrolleres manuelt``: the payout ledger holds it until a case worker decides.

A credit (kreditering) is left alone: it pays nothing, it withdraws an earlier decision, and the
ledger reverses what was paid for its original whatever the flag says.
"""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity


def _unknown_type(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if ctx.practitioner is not None or bill.kreditering:
        return None
    return {"avsender": ctx.sender_her or "ukjent"}


UNKNOWN_PRACTITIONER = Rule(
    id="TYPE-001",
    version=1,
    code="UKJENT_BEHANDLERTYPE",
    text=(
        "Behandlertypen til avsender (HER-id {avsender}) er ukjent, så takst- og "
        "beløpskontrollene kunne ikke gjøres. Regningen kontrolleres manuelt før utbetaling."
    ),
    guidance=(
        "Oppgi behandlerens kategori (TypeHealthcareProfessional, kodeverk 9060) i "
        "hodemeldingen, eller be Helfo registrere praksisens behandlertype."
    ),
    basis="Fail closed (I): no bill is approved that the tariff and amount rules skipped",
    severity=Severity.MANUAL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_unknown_type,
)
