"""PRAKSIS_IKKE_GYLDIG: the practice must be registered on the bill's treatment date."""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.practice.common import (
    EARLIEST,
    period_text,
    practice_on_treatment,
    register_applies,
)


def _outside(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if not register_applies(bill, ctx) or not ctx.practices.knows(ctx.sender_her):
        return None  # an unknown sender is UKJENT_PRAKSIS
    if practice_on_treatment(bill, ctx) is not None:
        return None
    periods = ", ".join(period_text(p.valid) for p in ctx.practices.periods(ctx.sender_her))
    return {
        "avsender": ctx.sender_her,
        "dato": f"{bill.dato_tid:%d.%m.%Y}",
        "perioder": periods,
    }


PRACTICE_NOT_VALID = Rule(
    id="PRAC-002",
    version=1,
    code="PRAKSIS_IKKE_GYLDIG",
    text=(
        "Praksisen (HER-id {avsender}) er ikke registrert på behandlingsdatoen {dato}; den er "
        "registrert {perioder}."
    ),
    guidance=(
        "Krev bare behandlinger fra perioden praksisen er registrert for. Er registreringen "
        "feil, be Helfo rette den og send regningen på nytt."
    ),
    basis=(
        "TECH-008 (I): the praksis must be valid (gyldigePerioder) on the treatment date, "
        "fields of KUHR's praksis API"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_outside,
)
