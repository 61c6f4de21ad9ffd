"""UGYLDIG_NLK: every code on a lab bill must be valid in the NLK register on the analysis date.

Decision: the bill is rejected (naming every invalid code), not paid without the invalid lines.
KUHR reports a status per regning, and an adjusted bill carries no Error in the AppRec, so the
sender would never learn which line was dropped; rejected, it resends the bill with valid codes.
Either way only valid codes are ever paid.
"""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.lab.common import LAB_PRACTITIONERS, NLK_START, applies, lines, listed


def _invalid_codes(bill: Enkeltregning, index: int, ctx: ClaimContext) -> Facts | None:
    if not applies(bill, ctx):
        return None
    invalid = [takst.kode for takst, entry in lines(bill, ctx) if entry is None]
    if not invalid:
        return None
    return {"koder": listed(invalid), "dato": bill.dato_tid.date().isoformat()}


UGYLDIG_NLK = Rule(
    id="LAB-001",
    version=1,
    code="UGYLDIG_NLK",
    text=(
        "Kode {koder} er ikke gyldig i Norsk laboratoriekodeverk (NLK) på analysedatoen {dato}. "
        "Bare gyldige NLK-koder gir rett til refusjon."
    ),
    guidance=(
        "Analyser utført fra 1. januar 2018 skal kreves med NLK-koder som er gyldige på "
        "analysedatoen. Rett koden (bruk eventuell erstatningskode) og send regningen på nytt."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=NLK_START,
    valid_to=None,
    check=_invalid_codes,
    practitioners=LAB_PRACTITIONERS,
    basis="Katalog LAB-001 (R): NLK fra 2018-01-01, analysedatoen avgjør",
)
