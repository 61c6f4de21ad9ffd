"""DEAD-001: a bill must reach us within 6 months from the end of the treatment month.

Folketrygdloven § 22-14 third ledd: the claim is foreldet 6 months after it arose, and for
direkte oppgjør the 6 months run from the end of the month of treatment. A bill treated on
15.03 must be received by 30.09 the same year (the last day of the month six months on).
Credits are not claims: their limit is DEAD-004 (``old_credit``).
"""

from __future__ import annotations

import calendar
from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.deadlines.common import fmt_date, fmt_time

#: Months after the end of the treatment month.
DEADLINE_MONTHS = 6


def deadline(treated: date, months: int = DEADLINE_MONTHS) -> date:
    """The last day a bill treated on ``treated`` may be received."""
    index = treated.month - 1 + months
    year, month = treated.year + index // 12, index % 12 + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def _too_late(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering:
        return None
    last_day = deadline(bill.dato_tid.date())
    if ctx.received_at.date() <= last_day:
        return None
    return {
        "dato": fmt_date(bill.dato_tid.date()),
        "frist": fmt_date(last_day),
        "mottatt": fmt_time(ctx.received_at),
    }


LATE_CLAIM = Rule(
    id="DL-001",
    version=1,
    code="FOR_SEN",
    text=(
        "Kravet er for seint framsett: behandling {dato} må være mottatt innen 6 måneder etter "
        "utgangen av behandlingsmåneden, det vil si senest {frist}. Kravet ble mottatt {mottatt}."
    ),
    guidance=(
        "Send regninger fortløpende, og senest 6 måneder etter utgangen av måneden "
        "behandlingen ble gitt. Et foreldet krav kan ikke sendes på nytt."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_too_late,
    basis="DEAD-001 (S/R): ftrl. § 22-14 tredje ledd; rundskriv til kap. 5, direkte oppgjør",
)
