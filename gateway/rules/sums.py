"""Message totals must agree with the bills: SumKravSamlet and AntallRegninger (Krav)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity


def _sum_mismatch(ctx: ClaimContext) -> Facts | None:
    total = sum((b.behandling.sum_refusjon for b in ctx.krav.regninger), Decimal("0"))
    if total == ctx.krav.sum_krav_samlet:
        return None
    return {"oppgitt": f"{ctx.krav.sum_krav_samlet:.2f}", "beregnet": f"{total:.2f}"}


def _count_mismatch(ctx: ClaimContext) -> Facts | None:
    actual = len(ctx.krav.regninger)
    if actual == ctx.krav.antall_regninger:
        return None
    return {"oppgitt": str(ctx.krav.antall_regninger), "faktisk": str(actual)}


SUM_KRAV_SAMLET = Rule(
    id="SUM-001",
    version=1,
    code="SUMKRAV",
    text=(
        "SumKravSamlet ({oppgitt} kr) er ikke lik summen av regningenes krav ({beregnet} kr). "
        "Hele meldingen er avvist."
    ),
    guidance="Kontroller at SumKravSamlet er summen av SumKrav/Refusjon i alle regningene.",
    basis="TECH-001 (S): the message must be consistent; KITH BKM Krav/SumKravSamlet",
    severity=Severity.REJECT_MESSAGE,
    scope=Scope.MESSAGE,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_sum_mismatch,
)

ANTALL_REGNINGER = Rule(
    id="SUM-002",
    version=1,
    code="ANTALLREGNINGER",
    text=(
        "AntallRegninger ({oppgitt}) stemmer ikke med antall Enkeltregning i meldingen "
        "({faktisk}). Hele meldingen er avvist."
    ),
    guidance="Kontroller at AntallRegninger er lik antall regninger i meldingen.",
    basis="TECH-001 (S): the message must be consistent; KITH BKM Krav/AntallRegninger",
    severity=Severity.REJECT_MESSAGE,
    scope=Scope.MESSAGE,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_count_mismatch,
)
