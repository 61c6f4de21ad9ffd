"""EN_BEHANDLING_PER_DAG: a psychologist gives a patient one treatment a day.

Counted per practitioner (HPR, else the sender): another approved bill for the same patient on
the same day, stored or earlier in the message, refuses this one. The catalogue accepts an
individual and a group or family therapy the same day; the sources name no takst for those, so
``GROUP_TAKSTER`` is empty and a bill carrying one of its codes would be let through.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import day_text
from gateway.rules.treatment.psychologist import PSYKOLOG

#: Group and family therapy takster (exempt); none are named by the sources.
GROUP_TAKSTER: frozenset[str] = frozenset()


def _group(codes: list[str]) -> bool:
    return any(code.lower() in GROUP_TAKSTER for code in codes)


def _second_today(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering or _group([t.kode for t in bill.behandling.takster]):
        return None
    patient = bill.patient.id
    day = datetime.combine(bill.dato_tid.date(), time())
    for earlier in ctx.earlier.approved():
        same = earlier.patient.id == patient and earlier.dato_tid.date() == day.date()
        other = not earlier.kreditering and earlier.guid != bill.guid
        if same and other and not _group([t.kode for t in earlier.behandling.takster]):
            return {"tidligere": earlier.regning_nr, "tid": day_text(earlier.dato_tid)}
    stored = ctx.history.practitioner_bills_between(
        ctx.practitioner_id, day, day + timedelta(days=1)
    )
    for stored_bill in stored:
        mine = stored_bill.patient_id == patient and stored_bill.guid != bill.guid
        if mine and not _group([code for code, _ in stored_bill.takster]):
            return {"tidligere": stored_bill.regning_nr, "tid": day_text(stored_bill.dato_tid)}
    return None


ONE_TREATMENT_A_DAY = Rule(
    id="TRT-009",
    version=1,
    code="EN_BEHANDLING_PER_DAG",
    text=(
        "Pasienten har allerede fått behandling samme dag (regning {tidligere}, {tid}); bare "
        "én behandling per dag refunderes."
    ),
    guidance=(
        "Krev én behandling per pasient og dag. Individuell behandling og gruppe- eller "
        "familieterapi samme dag kan kreves hver for seg."
    ),
    basis=(
        "FREQ-006 (R): only one treatment per day per patient at a psychologist (Helfo: ofte "
        "brukte takstar for psykolog); counted per practitioner (I)"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_second_today,
    practitioners=PSYKOLOG,
)
