"""TIME-005: takst 101 may be repeated only once per day for the same patient.

101 presumes at least 20 minutes; above 40 minutes it may be repeated once per day per person,
so at most 2 units per patient and calendar day, counted over this bill, bills approved earlier
in this message and live approved bills in the store (any practitioner). The limits are data:
``MAX_PER_DAY``.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.deadlines.common import (
    credited_in_message,
    fmt_date,
    is_live_other,
)
from gateway.rules.dental.timing import IN_FORCE_FROM

#: Takst (lower-case) -> units allowed per patient and calendar day.
MAX_PER_DAY: dict[str, int] = {"101": 2}


def _count(lines: tuple[tuple[str, int], ...], code: str) -> int:
    return sum(antall for kode, antall in lines if kode.lower() == code)


def _too_many_today(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering:
        return None
    day = bill.dato_tid.date()
    patient = bill.patient.id
    mine = tuple((t.kode, t.antall) for t in bill.behandling.takster)
    stored = None
    for code, limit in MAX_PER_DAY.items():
        own = _count(mine, code)
        if own == 0:
            continue
        earlier: list[str] = []
        total = own
        for other in ctx.earlier.approved():
            if other.kreditering or other.guid == bill.guid or other.patient.id != patient:
                continue
            if other.dato_tid.date() == day:
                n = _count(tuple((t.kode, t.antall) for t in other.behandling.takster), code)
                if n:
                    total += n
                    earlier.append(other.regning_nr)
        if stored is None:
            start = datetime.combine(day, time.min)
            credited = credited_in_message(ctx)
            stored = [
                b
                for b in ctx.history.patient_bills_between(
                    patient, start, start + timedelta(days=1)
                )
                if is_live_other(b, bill.guid, ctx, credited)
            ]
        for b in stored:
            n = _count(b.takster, code)
            if n:
                total += n
                earlier.append(b.regning_nr)
        if total > limit:
            return {
                "takst": code,
                "maks": str(limit),
                "antall": str(total),
                "dato": fmt_date(day),
                "tidligere": ", ".join(earlier) or "-",
            }
    return None


REPETITION_PER_DAY = Rule(
    id="DENT-004",
    version=1,
    code="REPETISJON_PER_DAG",
    text=(
        "Takst {takst} kan gjentas bare én gang per dag for samme pasient (høyst {maks} per "
        "dag). Med denne regningen blir det {antall} den {dato} (tidligere regningsnummer: "
        "{tidligere})."
    ),
    guidance=(
        "Takst 101 kan bare gjentas én gang samme dag for samme pasient, og bare når "
        "opplæringen varer mer enn 40 minutter."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=IN_FORCE_FROM,
    valid_to=None,
    check=_too_many_today,
    practitioners=frozenset({"tannlege", "tannpleier"}),
    codes=frozenset(MAX_PER_DAY),
    basis=(
        "TIME-005 (R): Helfo takstveiledning for tannlege, takst 101; counting across "
        "practitioners (I)"
    ),
)
