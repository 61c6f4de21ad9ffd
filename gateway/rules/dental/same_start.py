"""TIME-002: two bills of the same practitioner at the same start time, both with a time need.

The bill that comes second (in the store's or the message's order) is refused. Orthodontists and
universities may start treatments of different patients at the same time.
"""

from __future__ import annotations

from datetime import timedelta

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.deadlines.common import fmt_time
from gateway.rules.dental.timing import DENTAL, IN_FORCE_FROM, booked_between, first, own_need


def _same_start(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    need = own_need(bill, ctx)
    if need.minutes <= 0:
        return None
    start = bill.dato_tid
    near = booked_between(bill, ctx, start, start + timedelta(minutes=1))
    other = first(b for b in near if b.start == start)
    if other is None:
        return None
    return {"start": fmt_time(start), "takster": need.label, **other.facts("tidligere")}


SAME_START = Rule(
    id="DENT-002",
    version=1,
    code="SAMME_STARTTID",
    text=(
        "Samme starttid: regningsnummer {tidligere} ({hvor}) fra samme behandler starter også "
        "{start}, med takst {tidligere_takster}. Takst {takster} har tidskrav, og to regninger "
        "med tidskrav kan ikke ha samme starttid."
    ),
    guidance=(
        "Oppgi faktisk starttidspunkt for hver behandling. Takster fra samme seanse for samme "
        "pasient skal stå på samme regning."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=IN_FORCE_FROM,
    valid_to=None,
    check=_same_start,
    practitioners=DENTAL,
    basis=(
        "TIME-002 (S): NTF 31.08.2020, tidsregistrering i KUHR; orthodontists and universities "
        "exempt across patients"
    ),
)
