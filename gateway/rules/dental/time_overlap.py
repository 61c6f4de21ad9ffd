"""TIME-001: a bill that starts while an earlier bill's takster still need the practitioner.

KUHR stores each bill's start time. When a bill of the same practitioner starts after an
earlier one but before the earlier bill's time requirement is over, and the bill itself carries
a time need, the LATER bill is rejected (never the earlier). Example: 501 at 12:00 requires 30
minutes, so a bill with 502 and 6 (which belong on the same bill as 501) starting 12:20 is
rejected; starting 12:30 it is not. The earlier bill may be in the store or approved earlier in
the same message.
"""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.deadlines.common import fmt_time
from gateway.rules.dental.timing import (
    DENTAL,
    IN_FORCE_FROM,
    LOOKBACK,
    booked_between,
    first,
    own_need,
)


def _starts_inside_earlier(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    need = own_need(bill, ctx)
    if need.minutes <= 0:
        return None
    start = bill.dato_tid
    running = first(b for b in booked_between(bill, ctx, start - LOOKBACK, start) if start < b.end)
    if running is None:
        return None
    return {"start": fmt_time(start), "takster": need.label, **running.facts("tidligere")}


TIME_OVERLAP = Rule(
    id="DENT-001",
    version=1,
    code="TIDSKONFLIKT",
    text=(
        "Tidskonflikt: regningen starter {start}, mens regningsnummer {tidligere} ({hvor}) fra "
        "samme behandler startet {tidligere_start} med takst {tidligere_takster}, som krever "
        "minst {tidligere_minutter} minutter (til {tidligere_slutt}). Takst {takster} kan ikke "
        "utføres i samme tidsrom."
    ),
    guidance=(
        "Oppgi riktig starttidspunkt for hver behandling. Takster utført i samme seanse for "
        "samme pasient (for eksempel 501, 502 og 6) skal stå på samme regning."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=IN_FORCE_FROM,
    valid_to=None,
    check=_starts_inside_earlier,
    practitioners=DENTAL,
    basis=(
        "TIME-001 (S): NTF 31.08.2020, tidsregistrering i KUHR; minutes TIME-004/005/006/007 "
        "(R, Helfo takstveiledning); orthodontists and universities exempt across patients"
    ),
)
