"""Kreditering: only a whole, earlier approved bill can be credited, and only once."""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity


def _lines(bill: Enkeltregning) -> tuple[tuple[str, str, int], ...]:
    return tuple(sorted((t.kode, f"{t.verdi:.2f}", t.antall) for t in bill.behandling.takster))


def _not_whole_bill(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if not bill.kreditering:
        return None
    original = ctx.history.approved_bill(ctx.sender_her, bill.guid)
    if original is None:
        return {
            "guid": bill.guid,
            "grunn": "regningen som krediteres er ikke mottatt og godkjent tidligere",
        }
    if original.credited:
        return {"guid": bill.guid, "grunn": "regningen er allerede kreditert"}
    stored_lines = tuple(sorted((k, f"{v:.2f}", n) for k, v, n in original.takster))
    if stored_lines != _lines(bill) or original.sum_refusjon != bill.behandling.sum_refusjon:
        return {
            "guid": bill.guid,
            "grunn": (
                "kun hele regninger kan krediteres: takster og beløp må være like "
                f"regningsnummer {original.regning_nr}"
            ),
        }
    return None


CREDIT_WHOLE_BILL = Rule(
    id="CRED-001",
    version=1,
    code="KREDITERING",
    text="Kreditering av regning med Guid {guid} er avvist: {grunn}.",
    guidance=(
        "Krediter hele den opprinnelige regningen med samme Guid, takster og beløp, "
        "og send deretter den rettede regningen."
    ),
    basis="CORR-002 (S): kreditering of whole bills only, original must be received",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_not_whole_bill,
)
