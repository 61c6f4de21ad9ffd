"""GENETIKK_KOMBINASJON: medical genetics codes may not share a bill with codes of other fields.

Decision: strict. A pharmacogenetic KF code (which a genetics laboratory may claim) is still
another field, so it goes on its own bill too.
"""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.lab.common import (
    LAB_PRACTITIONERS,
    NLK_START,
    applies,
    is_genetics,
    lines,
    listed,
)


def _mixed_fields(bill: Enkeltregning, index: int, ctx: ClaimContext) -> Facts | None:
    if not applies(bill, ctx):
        return None
    genetic: list[str] = []
    other: list[str] = []
    for takst, entry in lines(bill, ctx):
        if entry is None:
            continue
        if is_genetics(entry):
            genetic.append(takst.kode)
        else:
            other.append(f"{takst.kode} ({entry.fagomrade})")
    if not genetic or not other:
        return None
    return {"genetikk": listed(genetic), "andre": listed(other)}


GENETIKK_KOMBINASJON = Rule(
    id="LAB-009",
    version=1,
    code="GENETIKK_KOMBINASJON",
    text=(
        "Medisinsk genetiske analyser ({genetikk}) kan ikke kombineres med analyser fra andre "
        "fagområder ({andre}) på samme regning."
    ),
    guidance="Send de medisinsk genetiske analysene på en egen regning.",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=NLK_START,
    valid_to=None,
    check=_mixed_fields,
    practitioners=LAB_PRACTITIONERS,
    basis="Genetikkoder kan ikke kombineres med andre fagområder på en regning",
)
