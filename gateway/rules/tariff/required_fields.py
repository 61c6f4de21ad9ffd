"""What a bill must carry besides its takster.

- TAR-006 MANGLER_DIAGNOSE: a legeregning needs at least one diagnosis (CONT-005, basis R/S:
  "feil diagnose" is a listed rejection cause), and any bill with a takst marked
  ``requires_diagnosis`` needs one (KUHR krever_diagnose, CALC-004, basis S). The lege part needs
  no tariff data; it runs whenever the practitioner type is known to be ``lege``.
- TAR-007 MANGLER_PROSEDYRE: a takst marked ``requires_procedure`` needs a Prosedyrekode on the
  bill (KUHR krever_prosedyre, CALC-004, basis S; what counts as the right procedure is not
  public, so any procedure code satisfies it).
"""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import EARLIEST, TAKST_TYPES, by_code, listing, tariff_view


def _flagged(bill: Enkeltregning, ctx: ClaimContext, *, diagnosis: bool) -> list[str]:
    view = tariff_view(bill, ctx)
    if view is None:
        return []
    flagged: list[str] = []
    for group in by_code(bill):
        entry = view.entry(group.code)
        if entry is None:
            continue
        if entry.requires_diagnosis if diagnosis else entry.requires_procedure:
            flagged.append(group.shown)
    return flagged


def _missing_diagnosis(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering or bill.behandling.diagnoser:
        return None
    flagged = _flagged(bill, ctx, diagnosis=True)
    reasons: list[str] = []
    if ctx.practitioner == "lege":
        reasons.append("regninger fra lege skal ha minst én diagnose")
    if flagged:
        which = "takst" if len(flagged) == 1 else "takstene"
        reasons.append(f"{which} {listing(flagged)} krever diagnose")
    if not reasons:
        return None
    return {"takst": listing(flagged), "grunn": "; ".join(reasons)}


def _missing_procedure(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering or bill.behandling.prosedyrekoder:
        return None
    flagged = _flagged(bill, ctx, diagnosis=False)
    if not flagged:
        return None
    return {"takst": listing(flagged)}


MISSING_DIAGNOSIS = Rule(
    id="TAR-006",
    version=1,
    code="MANGLER_DIAGNOSE",
    text="Regningen mangler diagnose: {grunn}.",
    guidance=(
        "Oppgi diagnosen for behandlingen (ICPC-2 for allmennlege, ICD-10 for spesialist og "
        "psykolog) og send regningen på nytt."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_missing_diagnosis,
    practitioners=TAKST_TYPES,
    basis="CONT-005 (R/S, lege); KUHR krever_diagnose (CALC-004, S); ELIG-024 (R)",
)

MISSING_PROCEDURE = Rule(
    id="TAR-007",
    version=1,
    code="MANGLER_PROSEDYRE",
    text="Takst {takst} krever prosedyrekode, men regningen har ingen.",
    guidance="Oppgi prosedyrekoden for det som ble utført og send regningen på nytt.",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_missing_procedure,
    practitioners=TAKST_TYPES,
    basis="KUHR krever_prosedyre (CALC-004, S; semantics I)",
)
