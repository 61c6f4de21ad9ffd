"""MANGLER_DIREKTE_OPPGJOR: a refund is paid only under an avtale om direkte oppgjør valid on
the treatment date.

A bill that claims no refund (all amounts 0) only reports egenandeler for the frikort ceiling
and needs no agreement (a dentist without direkte oppgjør reports that way, CONT-015). Senders
that only report egenandeler are refused a refund by EGENANDEL_REFUSJON instead, so they are
left out here.
"""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.practice.common import (
    EARLIEST,
    claims_refund,
    period_text,
    practice_on_treatment,
    register_applies,
)


def _no_agreement(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if not register_applies(bill, ctx) or not claims_refund(bill):
        return None
    practice = practice_on_treatment(bill, ctx)
    if practice is None or practice.kind.egenandel_only:
        return None  # PRAKSIS_IKKE_GYLDIG / UKJENT_PRAKSIS, or EGENANDEL_REFUSJON
    if practice.direct_settlement_on(bill.dato_tid.date()):
        return None
    return {
        "navn": practice.name,
        "avsender": practice.her_id,
        "dato": f"{bill.dato_tid:%d.%m.%Y}",
        "avtale": period_text(practice.direct_settlement),
    }


NO_DIRECT_SETTLEMENT = Rule(
    id="PRAC-003",
    version=1,
    code="MANGLER_DIREKTE_OPPGJOR",
    text=(
        "{navn} (HER-id {avsender}) har ikke avtale om direkte oppgjør som gjelder "
        "behandlingsdatoen {dato} (registrert avtale: {avtale})."
    ),
    guidance=(
        "Refusjon kan bare kreves under en gyldig avtale om direkte oppgjør med Helfo. Uten "
        "avtale sendes regningen med refusjon 0 (bare egenandel), eller pasienten søker selv."
    ),
    basis=(
        "PROV-001 (R): ftrl. § 5-1 fjerde ledd, stønad only with avtale om direkte oppgjør "
        "(from 2021; the register's dates decide); CONT-015 (R): a bill with refusjon 0 only "
        "reports egenandeler and passes"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_no_agreement,
)
