"""GENETIKK_FAGOMRADE: a laboratory for medical genetics may claim only medical genetics codes
(fagområde MG), except pharmacogenetic analyses in clinical pharmacology (fagområde KF with
the register's ``pharmacogenetic`` flag)."""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.lab.common import (
    GENETICS_LAB,
    NLK_START,
    applies,
    is_genetics,
    is_pharmacogenetic,
    lines,
    listed,
)


def _other_field_by_genetics_lab(
    bill: Enkeltregning, index: int, ctx: ClaimContext
) -> Facts | None:
    if not applies(bill, ctx) or ctx.practitioner != GENETICS_LAB:
        return None
    other = [
        f"{t.kode} ({entry.fagomrade})"
        for t, entry in lines(bill, ctx)
        if entry is not None and not is_genetics(entry) and not is_pharmacogenetic(entry)
    ]
    if not other:
        return None
    return {"koder": listed(other)}


GENETIKK_FAGOMRADE = Rule(
    id="LAB-008",
    version=1,
    code="GENETIKK_FAGOMRADE",
    text=(
        "Laboratorier for medisinsk genetikk kan bare kreve medisinsk genetiske analyser "
        "(fagområde MG) og farmakogenetiske analyser i klinisk farmakologi; kode {koder} hører "
        "til et annet fagområde."
    ),
    guidance="Fjern analysene fra andre fagområder fra regningen.",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=NLK_START,
    valid_to=None,
    check=_other_field_by_genetics_lab,
    practitioners=frozenset({GENETICS_LAB}),
    basis=(
        "Laboratorier for medisinsk genetikk kan bare kreve genetikkoder, "
        "unntatt farmakogenetiske analyser i klinisk farmakologi"
    ),
)
