"""KUHR merknad 458: egenandeler must be reported at least every 14 days (a warning)."""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity

REPORTING_DAYS = 14


def _reported_late(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    charged = bill.betalt_egenandel and bill.behandling.kode_egenandel is None
    if bill.kreditering or not charged:
        return None
    days = (ctx.received_at.date() - bill.dato_tid.date()).days
    if days <= REPORTING_DAYS:
        return None
    return {"dager": str(days), "dato": bill.dato_tid.date().isoformat()}


EGENANDEL_REPORTING = Rule(
    id="DL-004",
    version=1,
    code="458",
    text=(
        "Egenandelen for behandlingen {dato} er rapportert {dager} dager etter behandlingen; "
        "egenandeler skal rapporteres minst hver 14. dag."
    ),
    guidance="Send regninger med betalt egenandel minst hver 14. dag (egenandelsregisteret).",
    severity=Severity.WARNING,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_reported_late,
    basis="DEAD-007 (S): KUHR merknad 458 on innsending; egenandelsregisterforskriften",
)
