"""GENETIKK_REKVIRENT: medical genetics codes (fagområde MG) may be claimed only by
laboratories for medical genetics (practitioner type ``medisinsk_genetikk``)."""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.lab.common import (
    GENETICS_LAB,
    LAB_PRACTITIONERS,
    NLK_START,
    applies,
    is_genetics,
    lines,
    listed,
)


def _genetics_by_other_lab(bill: Enkeltregning, index: int, ctx: ClaimContext) -> Facts | None:
    if not applies(bill, ctx) or ctx.practitioner == GENETICS_LAB:
        return None
    genetic = [t.kode for t, entry in lines(bill, ctx) if entry is not None and is_genetics(entry)]
    if not genetic:
        return None
    return {"koder": listed(genetic)}


GENETIKK_REKVIRENT = Rule(
    id="LAB-007",
    version=1,
    code="GENETIKK_REKVIRENT",
    text=(
        "Kode {koder} er medisinsk genetiske analyser (fagområde MG) og kan bare kreves av "
        "laboratorier for medisinsk genetikk."
    ),
    guidance=(
        "Medisinsk genetiske analyser kreves av laboratoriet for medisinsk genetikk som utførte "
        "dem. Fjern kodene fra regningen."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=NLK_START,
    valid_to=None,
    check=_genetics_by_other_lab,
    practitioners=LAB_PRACTITIONERS - {GENETICS_LAB},
    basis="Genetikkoder bare for laboratorier for medisinsk genetikk",
)
