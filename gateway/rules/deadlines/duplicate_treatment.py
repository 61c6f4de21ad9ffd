"""CORR-001: the same treatment billed twice (same patient, takst and start time, other Guid).

A bill is a duplicate when a live approved bill, from any practitioner, or a bill approved
earlier in the same message, has the same patient, the same start time (DatoTid, to the
second) and at least one of the same takst/NLK codes, under another Guid. The same Guid sent
again is rule DUP-001's; bills credited earlier in the same message do not count, so
"credit, then send the corrected bill" works in one message as in two.

Laboratories are left to the lab family's NLK_DUPLIKAT (same code, patient and analysis *date*),
which knows the list codes that may repeat across bills.
"""

from __future__ import annotations

from datetime import date, timedelta

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.deadlines.common import (
    EARLIER_MESSAGE,
    SAME_MESSAGE,
    credited_in_message,
    fmt_time,
    is_live_other,
)

#: Practitioner types whose duplicates the lab family checks (``gateway.rules.lab.duplicate``).
LEFT_TO_LAB = frozenset({"lab", "medisinsk_genetikk"})


def _codes(takster: tuple[tuple[str, int], ...]) -> dict[str, str]:
    return {kode.lower(): kode for kode, _ in takster}


def _duplicate(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering or ctx.practitioner in LEFT_TO_LAB:
        return None
    mine = _codes(tuple((t.kode, t.antall) for t in bill.behandling.takster))
    if not mine:
        return None
    start = bill.dato_tid

    def found(shared: set[str], regning_nr: str, where: str) -> Facts:
        return {
            "takst": ", ".join(mine[c] for c in sorted(shared)),
            "start": fmt_time(start),
            "tidligere": regning_nr,
            "hvor": where,
        }

    for earlier in ctx.earlier.approved():
        if (
            earlier.kreditering
            or earlier.guid == bill.guid
            or earlier.dato_tid != start
            or earlier.patient.id != bill.patient.id
        ):
            continue
        shared = mine.keys() & {t.kode.lower() for t in earlier.behandling.takster}
        if shared:
            return found(shared, earlier.regning_nr, SAME_MESSAGE)

    credited = credited_in_message(ctx)
    end = start + timedelta(minutes=1)
    for stored in ctx.history.patient_bills_between(bill.patient.id, start, end):
        if stored.dato_tid != start or not is_live_other(stored, bill.guid, ctx, credited):
            continue
        shared = mine.keys() & _codes(stored.takster).keys()
        if shared:
            return found(shared, stored.regning_nr, EARLIER_MESSAGE)
    return None


DUPLICATE_TREATMENT = Rule(
    id="DL-003",
    version=1,
    code="DUPLIKAT_BEHANDLING",
    text=(
        "Duplikatregning: takst {takst} for samme pasient med starttid {start} er allerede "
        "innsendt som regningsnummer {tidligere} ({hvor})."
    ),
    guidance=(
        "Send hver behandling bare én gang. Skal en godkjent regning rettes, krediter den "
        "først og send deretter den rettede regningen."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_duplicate,
    basis="CORR-001 (S): Helfo utbetalingsvedtak, «Duplikatregning: Regningen er allerede "
    "innsendt som regningsnummer …»",
)
