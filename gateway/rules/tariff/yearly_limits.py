"""Limits on how often a patient may have a takst: per calendar year, or once in a lifetime.

The count is everything approved before this bill: approved, uncredited bills in the store
(``ClaimHistory``), plus the bills approved earlier in the same message (less credits there,
whose originals the store still counts), plus this bill's own units. The bill that passes the
limit is rejected, naming how many were already used; bills before it stay approved.

- TAR-005 ARSGRENSE from the tariff data: ``max_per_year`` with ``max_per_year_group`` (codes
  counted together) and ``max_per_year_per_patient`` (across all practitioners, else per
  practitioner) — KUHR maks_antall_per_kalender_aar / maks_antall_gjelder_pasient (CALC-004, S).
- Limits from the catalogue, for when the tariff data does not carry them (each stands aside
  as soon as the book gives any of its codes a ``max_per_year``, so a limit never counts twice):
  TAR-008 501 with 502 at most 14 per calendar year across behandlere (FREQ-001),
  TAR-009 psykolog takst 12 at most 8 per calendar year from 2021-07-01 (FREQ-005),
  TAR-010 K02a once per patient (FREQ-009).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from gateway.claims.model import Enkeltregning
from gateway.rules.base import BillCheck, ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import (
    EARLIEST,
    TAKST_TYPES,
    by_code,
    listing,
    tariff_view,
)

_ALL_TIME = (datetime(1800, 1, 1), datetime(9999, 1, 1))


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``limit`` units of ``codes`` (counted together) per calendar year, or ever."""

    codes: frozenset[str]  # lower-case
    limit: int
    per_patient: bool = True  # across all practitioners; False = this practitioner only
    yearly: bool = True  # False = in the patient's whole history


def _period(limit: Limit, treated: datetime) -> tuple[datetime, datetime]:
    if not limit.yearly:
        return _ALL_TIME
    return datetime(treated.year, 1, 1), datetime(treated.year + 1, 1, 1)


def _units(bill: Enkeltregning, codes: frozenset[str]) -> int:
    return sum(t.antall for t in bill.behandling.takster if t.kode.lower() in codes)


def used_before(bill: Enkeltregning, ctx: ClaimContext, limit: Limit) -> int:
    """Units of the limit's codes the patient already has in the limit's period."""
    patient = bill.patient.id
    start, end = _period(limit, bill.dato_tid)
    if limit.per_patient:
        used = ctx.history.patient_code_count(patient, limit.codes, start, end)
    else:
        used = sum(
            antall
            for stored in ctx.history.patient_bills_between(patient, start, end)
            if stored.practitioner_id == ctx.practitioner_id
            for kode, antall in stored.takster
            if kode.lower() in limit.codes
        )
    for earlier in ctx.earlier.approved():
        if earlier.patient.id != patient or not start <= earlier.dato_tid < end:
            continue
        units = _units(earlier, limit.codes)
        used += -units if earlier.kreditering else units
    return max(used, 0)


def _over(bill: Enkeltregning, ctx: ClaimContext, limit: Limit) -> Facts | None:
    here = _units(bill, limit.codes)
    if here <= 0:
        return None
    shown = next(t.kode for t in bill.behandling.takster if t.kode.lower() in limit.codes)
    used = used_before(bill, ctx, limit)
    if used + here <= limit.limit:
        return None
    others = sorted(limit.codes - {shown.lower()})
    together = f" (regnet sammen med {listing(others)})" if others else ""
    who = "hos alle behandlere" if limit.per_patient else "hos samme behandler"
    period = f"per kalenderår ({bill.dato_tid.year})" if limit.yearly else "i alt"
    times = "gang" if limit.limit == 1 else "ganger"
    return {
        "takst": shown,
        "maks": str(limit.limit),
        "grense": f"{limit.limit} {times}",
        "brukt": str(used),
        "denne": str(here),
        "periode": period,
        "omfang": f"{who}{together}",
    }


_TEXT = (
    "Takst {takst} kan godtgjøres høyst {grense} {periode} for samme pasient {omfang}. "
    "{brukt} er allerede godkjent, og denne regningen har {denne} til."
)


def _tariff_limits(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    view = tariff_view(bill, ctx)
    if view is None:
        return None
    seen: set[frozenset[str]] = set()
    for group in by_code(bill):
        entry = view.entry(group.code)
        if entry is None or entry.max_per_year is None:
            continue
        codes = frozenset({group.code, *(c.lower() for c in entry.max_per_year_group)})
        if codes in seen:
            continue
        seen.add(codes)
        limit = Limit(codes, entry.max_per_year, per_patient=entry.max_per_year_per_patient)
        facts = _over(bill, ctx, limit)
        if facts is not None:
            return facts
    return None


TARIFF_YEARLY_LIMIT = Rule(
    id="TAR-005",
    version=1,
    code="ARSGRENSE",
    text=_TEXT,
    guidance=(
        "Taksten er brukt opp for pasienten i perioden; den kan ikke kreves på nytt før "
        "grensen tillater det. Krediter en feilført tidligere regning først om den var feil."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_tariff_limits,
    practitioners=TAKST_TYPES,
    basis="KUHR maks_antall_per_kalender_aar / maks_antall_gjelder_pasient (CALC-004, S); FREQ-*",
)


def _catalogue_limit(limit: Limit) -> BillCheck:
    def check(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
        if ctx.practitioner is None or bill.kreditering:
            return None
        on = bill.dato_tid.date()
        for code in limit.codes:
            entry = ctx.tariffs.takst(code, ctx.practitioner, on)
            if entry is not None and entry.max_per_year is not None:
                return None  # the tariff data carries a limit: TAR-005 decides
        return _over(bill, ctx, limit)

    return check


def _limit_rule(
    rule_id: str,
    limit: Limit,
    practitioners: frozenset[str],
    valid_from: date,
    basis: str,
    code: str = "ARSGRENSE",
) -> Rule:
    return Rule(
        id=rule_id,
        version=1,
        code=code,
        text=_TEXT,
        guidance=TARIFF_YEARLY_LIMIT.guidance,
        severity=Severity.REJECT_BILL,
        scope=Scope.BILL,
        valid_from=valid_from,
        valid_to=None,
        check=_catalogue_limit(limit),
        practitioners=practitioners,
        codes=limit.codes,
        basis=basis,
    )


PERIO_501_LIMIT = _limit_rule(
    "TAR-008",
    Limit(frozenset({"501", "502"}), 14),
    frozenset({"tannlege", "tannpleier"}),
    EARLIEST,
    "FREQ-001 (R; counted across behandlere as KUHR must, I)",
)

PSYCHOLOGIST_12_LIMIT = _limit_rule(
    "TAR-009",
    Limit(frozenset({"12"}), 8),
    frozenset({"psykolog"}),
    date(2021, 7, 1),
    "FREQ-005 (R, from 2021-07-01, no exceptions)",
)

ENT_K02A_ONCE = _limit_rule(
    "TAR-010",
    Limit(frozenset({"k02a"}), 1, yearly=False),
    frozenset({"lege"}),
    EARLIEST,
    "FREQ-009 (R: K02a once per patient)",
    code="MAKS_PER_PASIENT",
)
