"""TAR-001 UKJENT_TAKST: every takst must exist for the practitioner type and be valid on the
treatment date (CONT-007, basis S: KUHR rejects takster Helfo does not refund)."""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import (
    EARLIEST,
    TAKST_TYPES,
    by_code,
    day_text,
    listing,
    tariff_view,
)


def _unknown_codes(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    view = tariff_view(bill, ctx)
    if view is None:
        return None
    unknown: list[str] = []
    reasons: list[str] = []
    for group in by_code(bill):
        if view.entry(group.code) is not None:
            continue
        unknown.append(group.shown)
        if view.book.knows_takst(group.code, view.practitioner):
            reasons.append(f"takst {group.shown} er ikke gyldig på denne datoen")
        else:
            reasons.append(f"takst {group.shown} finnes ikke i takstene for {view.practitioner}")
    if not unknown:
        return None
    return {
        "takst": listing(unknown),
        "praksistype": view.practitioner,
        "dato": day_text(view.on),
        "grunn": "; ".join(reasons),
    }


UNKNOWN_TAKST = Rule(
    id="TAR-001",
    version=1,
    code="UKJENT_TAKST",
    text=(
        "Ukjent takst {takst} for praksistypen {praksistype} på behandlingsdatoen {dato}: {grunn}."
    ),
    guidance=(
        "Bruk bare takster fra takstene som gjaldt for din praksistype på behandlingsdatoen; "
        "oppdater takstene i journalsystemet og send regningen på nytt."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_unknown_codes,
    practitioners=TAKST_TYPES,
    basis="CONT-007 (S); takst fradato/tildato from KUHR's takst data (CALC-004, S)",
)
