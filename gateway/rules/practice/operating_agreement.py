"""MANGLER_DRIFTSAVTALE: a physiotherapist is refunded only with a municipal driftsavtale."""

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


def _no_operating_agreement(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if not register_applies(bill, ctx) or not claims_refund(bill):
        return None
    practice = practice_on_treatment(bill, ctx)
    if practice is None or practice.practice_type != "fysioterapeut":
        return None
    if practice.operating_agreement_on(bill.dato_tid.date()):
        return None
    return {
        "navn": practice.name,
        "avsender": practice.her_id,
        "dato": f"{bill.dato_tid:%d.%m.%Y}",
        "avtale": period_text(practice.operating_agreement),
    }


NO_OPERATING_AGREEMENT = Rule(
    id="PRAC-004",
    version=1,
    code="MANGLER_DRIFTSAVTALE",
    text=(
        "{navn} (HER-id {avsender}) har ikke driftsavtale med kommunen på behandlingsdatoen "
        "{dato} (registrert driftsavtale: {avtale}). Fysioterapi gir bare rett til refusjon "
        "hos fysioterapeut med driftsavtale."
    ),
    guidance="Krev refusjon bare for behandlinger i perioden praksisen har driftsavtale.",
    basis="PROV-010 (R): stønad requires a fysioterapeut with driftsavtale with the kommune",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_no_operating_agreement,
    practitioners=frozenset({"fysioterapeut"}),
)
