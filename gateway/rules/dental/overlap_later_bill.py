"""The mirror of TIME-001, to manual control: a bill whose own time requirement covers the start
of a bill of the same practitioner that was approved before it.

TIME-001 rejects the bill that starts later, never the earlier one; but when the later-starting
bill arrived first it is already approved, and rejecting this (earlier-starting) bill would turn
the rule around. KUHR sends time-check results to manual follow-up (TIME-003), so this bill is
approved and flagged for a case worker (kontrolleres manuelt). Without this rule, sending bills
in reverse order would escape the time control.
"""

from __future__ import annotations

from datetime import timedelta

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.deadlines.common import fmt_time
from gateway.rules.dental.timing import DENTAL, IN_FORCE_FROM, booked_between, first, own_need


def _covers_later_start(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    need = own_need(bill, ctx)
    if need.minutes <= 0:
        return None
    start = bill.dato_tid
    end = start + timedelta(minutes=need.minutes)
    later = first(b for b in booked_between(bill, ctx, start, end) if b.start > start)
    if later is None:
        return None
    return {
        "start": fmt_time(start),
        "takster": need.label,
        "minutter": str(need.minutes),
        "slutt": fmt_time(end),
        **later.facts("senere"),
    }


OVERLAP_LATER_BILL = Rule(
    id="DENT-003",
    version=1,
    code="TIDSKONFLIKT_KONTROLL",
    text=(
        "Kontrolleres manuelt: takst {takster} krever minst {minutter} minutter fra {start} "
        "(til {slutt}), men regningsnummer {senere} ({hvor}) fra samme behandler starter "
        "{senere_start} med takst {senere_takster}."
    ),
    guidance=(
        "Oppgi riktig starttidspunkt for hver behandling, og send regningene i den rekkefølgen "
        "behandlingene ble gitt."
    ),
    severity=Severity.MANUAL,
    scope=Scope.BILL,
    valid_from=IN_FORCE_FROM,
    valid_to=None,
    check=_covers_later_start,
    practitioners=DENTAL,
    basis="TIME-001 (S) in reverse order of arrival, routed as TIME-003 (S, vendor); I",
)
