"""DEAD-004: a bill older than 3 years can no longer be credited (kreditert).

The original's DatoTid is taken from the credit itself: a credit repeats the whole original bill
(CRED-001 checks takster and amounts; the stored bill view carries no date). "Older than 3 years"
means received after the third anniversary of the treatment date (29.02 counts from 28.02).
"""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.deadlines.common import fmt_date, fmt_time

CREDIT_YEARS = 3


def anniversary(day: date, years: int = CREDIT_YEARS) -> date:
    """``day`` moved ``years`` years on; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _credit_too_old(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if not bill.kreditering:
        return None
    last_day = anniversary(bill.dato_tid.date())
    if ctx.received_at.date() <= last_day:
        return None
    return {
        "regning_nr": bill.regning_nr,
        "guid": bill.guid,
        "dato": fmt_date(bill.dato_tid.date()),
        "frist": fmt_date(last_day),
        "mottatt": fmt_time(ctx.received_at),
    }


OLD_CREDIT = Rule(
    id="DL-002",
    version=1,
    code="KREDITERING_FOR_GAMMEL",
    text=(
        "Kreditering av regningsnummer {regning_nr} (Guid {guid}) er avvist: regningen er fra "
        "{dato}, og regninger eldre enn 3 år kan ikke krediteres (siste dag var {frist}, "
        "krediteringen ble mottatt {mottatt})."
    ),
    guidance=(
        "Regninger eldre enn 3 år kan ikke krediteres elektronisk. Ta kontakt med Helfo om "
        "tilbakebetaling."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_credit_too_old,
    basis="DEAD-004 (S): KUHR behandlerkravmelding (navikt/kuhr-krav-api-dokumentasjon)",
)
