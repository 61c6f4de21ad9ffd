"""UGYLDIG_TANNKODE: a dentist's teeth and regions are given as ISO 3950 (FDI) codes.

Permanent teeth 11-18, 21-28, 31-38, 41-48; primary teeth 51-55, 61-65, 71-75, 81-85; areas 00
(whole mouth), 01 (upper jaw), 02 (lower jaw) and the sextants 03-08.
"""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity

_PERMANENT = {f"{q}{t}" for q in range(1, 5) for t in range(1, 9)}
_PRIMARY = {f"{q}{t}" for q in range(5, 9) for t in range(1, 6)}
_AREAS = {f"0{n}" for n in range(9)}
ISO_3950 = frozenset(_PERMANENT | _PRIMARY | _AREAS)


def _invalid_teeth(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    if bill.kreditering:
        return None
    wrong = [t for t in bill.behandling.tenner if t.strip() not in ISO_3950]
    if not wrong:
        return None
    return {"tenner": ", ".join(dict.fromkeys(wrong))}


INVALID_TOOTH = Rule(
    id="CONT-003",
    version=1,
    code="UGYLDIG_TANNKODE",
    text="Tann- eller områdekoden {tenner} er ikke en kode etter ISO 3950.",
    guidance=(
        "Oppgi tenner som ISO 3950-koder (11–48, melketenner 51–85) og områder som 00–08."
    ),
    basis="CONT-010 (R): tooth or region per ISO 3950 (KUHR BKM documentation); outcome I",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_invalid_teeth,
    practitioners=frozenset({"tannlege", "tannpleier", "kjeveortoped"}),
)
