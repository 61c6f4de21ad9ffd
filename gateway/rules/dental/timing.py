"""How long a dental bill takes, and which other bills of the practitioner lie near it.

The time a bill requires is the sum over its takster of each takst's time need, read from the
tariff book (KUHR's "minimum tidsbruk" and "tidsbruk per repetisjon"):

- a takst with ``min_minutes``: ``min_minutes + (antall - 1) × minutes_per_repetition``
  (repetitions add nothing when no per-repetition time is given; with only a per-repetition
  time, ``antall × minutes_per_repetition``);
- a ``time_based`` takst without minutes (the 200-series, and any treatment the tariff marks
  so): ``IMPLICIT_MINUTES``, one minute. Its duration is unknown, so the only thing it can
  prove is that another bill may not *start* at the same time (or within that minute);
- any other takst (material takster such as 423), or a code the book does not know on that
  date: no time need.

The data is the tariff book's; the explicit minimums of the takstveiledning (takst 5 more than
10 min, 101 at least 20 min, 501 30 min and 30 min per repetition, 604e 45 min) belong there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext
from gateway.rules.deadlines.common import (
    EARLIER_MESSAGE,
    SAME_MESSAGE,
    credited_in_message,
    fmt_time,
    is_live_other,
)
from gateway.tariffs.model import TakstEntry, TariffBook

#: The dental time rules are in force for treatments from this date (KUHR, 1 October 2020).
IN_FORCE_FROM = date(2020, 10, 1)

#: Practitioner types the time rules concern.
DENTAL = frozenset({"tannlege", "tannpleier", "kjeveortoped"})

#: Assumed time need of a ``time_based`` takst without explicit minutes.
IMPLICIT_MINUTES = 1

#: How far back to look for an earlier bill whose time might still be running. No dental
#: session is assumed to need more than 12 hours (501 × 14 is 7 hours).
LOOKBACK = timedelta(hours=12)

#: Sender HER ids of universities (odontology faculties' student clinics). Like orthodontists
#: they may treat different patients at the same time; add their HER ids here. Empty: none
#: known to this deployment.
UNIVERSITY_HER_IDS: frozenset[str] = frozenset()

Lines = tuple[tuple[str, int], ...]  # (kode, antall)


def takst_minutes(entry: TakstEntry | None, antall: int) -> int:
    """The time need of ``antall`` units of one takst (see the module text)."""
    if entry is None:
        return 0
    repeats = max(antall - 1, 0)
    if entry.min_minutes is not None:
        return entry.min_minutes + repeats * (entry.minutes_per_repetition or 0)
    if entry.minutes_per_repetition is not None:
        return max(antall, 1) * entry.minutes_per_repetition
    return IMPLICIT_MINUTES if entry.time_based else 0


@dataclass(frozen=True, slots=True)
class TimeNeed:
    minutes: int
    codes: tuple[str, ...]  # the takster that carry it, as written on the bill

    @property
    def label(self) -> str:
        return ", ".join(self.codes) if self.codes else "-"


def time_need(lines: Lines, book: TariffBook, practitioner: str, on: date) -> TimeNeed:
    """What a bill's takster require, for a practitioner type on a treatment date."""
    total = 0
    codes: list[str] = []
    for kode, antall in lines:
        minutes = takst_minutes(book.takst(kode, practitioner, on), antall)
        if minutes > 0:
            total += minutes
            if kode not in codes:
                codes.append(kode)
    return TimeNeed(total, tuple(codes))


def lines_of(bill: Enkeltregning) -> Lines:
    return tuple((t.kode, t.antall) for t in bill.behandling.takster)


@dataclass(frozen=True, slots=True)
class Booked:
    """Another bill of the same practitioner, with the time its takster require."""

    regning_nr: str
    start: datetime
    need: TimeNeed
    where: str  # SAME_MESSAGE or EARLIER_MESSAGE

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.need.minutes)

    def facts(self, prefix: str) -> dict[str, str]:
        return {
            prefix: self.regning_nr,
            f"{prefix}_start": fmt_time(self.start),
            f"{prefix}_takster": self.need.label,
            f"{prefix}_minutter": str(self.need.minutes),
            f"{prefix}_slutt": fmt_time(self.end),
            "hvor": self.where,
        }


def exempt_across_patients(ctx: ClaimContext) -> bool:
    """Orthodontists and universities may treat different patients at the same time."""
    return ctx.practitioner == "kjeveortoped" or ctx.sender_her in UNIVERSITY_HER_IDS


def own_need(bill: Enkeltregning, ctx: ClaimContext) -> TimeNeed:
    if ctx.practitioner is None:
        return TimeNeed(0, ())
    return time_need(lines_of(bill), ctx.tariffs, ctx.practitioner, bill.dato_tid.date())


def booked_between(
    bill: Enkeltregning, ctx: ClaimContext, start: datetime, end: datetime
) -> Sequence[Booked]:
    """The practitioner's other live bills starting in ``[start, end)`` that carry a time need:
    approved earlier in this message, then from the store (minus bills credited earlier in
    this message and the same Guid sent again). For orthodontists and universities only bills
    of the same patient count. Bills treated before ``IN_FORCE_FROM`` are not counted."""
    practitioner = ctx.practitioner
    if practitioner is None or bill.kreditering:
        return ()
    same_patient_only = exempt_across_patients(ctx)
    start = max(start, datetime.combine(IN_FORCE_FROM, datetime.min.time()))
    found: list[Booked] = []

    def add(regning_nr: str, moment: datetime, lines: Lines, where: str) -> None:
        need = time_need(lines, ctx.tariffs, practitioner, moment.date())
        if need.minutes > 0:
            found.append(Booked(regning_nr, moment, need, where))

    for earlier in ctx.earlier.approved():
        if earlier.kreditering or earlier.guid == bill.guid:
            continue
        if not start <= earlier.dato_tid < end:
            continue
        if same_patient_only and earlier.patient.id != bill.patient.id:
            continue
        add(earlier.regning_nr, earlier.dato_tid, lines_of(earlier), SAME_MESSAGE)

    if ctx.practitioner_id and start < end:
        credited = credited_in_message(ctx)
        for stored in ctx.history.practitioner_bills_between(ctx.practitioner_id, start, end):
            if not is_live_other(stored, bill.guid, ctx, credited):
                continue
            if same_patient_only and stored.patient_id != bill.patient.id:
                continue
            add(stored.regning_nr, stored.dato_tid, stored.takster, EARLIER_MESSAGE)
    return found


def first(bookings: Iterable[Booked]) -> Booked | None:
    """The earliest-starting of ``bookings``."""
    return min(bookings, key=lambda b: b.start, default=None)
