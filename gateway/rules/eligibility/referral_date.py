"""A treatment cannot start before the date of the referral it is based on."""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity


def _started_before_referral(
    bill: Enkeltregning, _index: int, _ctx: ClaimContext
) -> Facts | None:
    referral = bill.behandling.henvisnings_dato
    if referral is None or bill.kreditering or referral <= bill.dato_tid.date():
        return None
    return {"start": bill.dato_tid.date().isoformat(), "henvisning": referral.isoformat()}


TREATMENT_BEFORE_REFERRAL = Rule(
    id="ELIG-001",
    version=1,
    code="HENVISNING_ETTER_START",
    text=(
        "Behandlingen er startet ({start}) før datoen på henvisningen ({henvisning}). "
        "En henvisning kan ikke tilbakedateres."
    ),
    guidance="Oppgi henvisningen som lå til grunn da behandlingen startet, med dens dato.",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_started_before_referral,
    basis=(
        "ELIG-004 (S) for logoped/audiopedagog («Behandlinga er starta opp før datoen på legen "
        "si henvising»); applied to every bill that carries a HenvisningsDato (I)"
    ),
)
