"""OVER_25_BEHANDLINGER: a speech therapist's or audiopedagogue's 26th treatment and later on
one referral go to manual control: more than 25 need documentation (adults) or a new Helfo
approval (children).

The treatments counted are the practitioner's approved bills for the same patient from the
referral date (HenvisningsDato) on, stored and earlier in the message, this bill included. A
bill without a referral date is not counted (the referral is what the 25 belong to).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.treatment.speech_therapy import SPEECH

LIMIT = 25


def _beyond_limit(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    referral = bill.behandling.henvisnings_dato
    if bill.kreditering or referral is None:
        return None
    patient = bill.patient.id
    start = datetime.combine(referral, time())
    end = datetime.combine(bill.dato_tid.date(), time()) + timedelta(days=1)
    guids = {
        b.guid
        for b in ctx.history.practitioner_bills_between(ctx.practitioner_id, start, end)
        if b.patient_id == patient
    }
    guids |= {
        b.guid
        for b in ctx.earlier.approved()
        if b.patient.id == patient and not b.kreditering and start <= b.dato_tid < end
    }
    guids.add(bill.guid)
    if len(guids) <= LIMIT:
        return None
    return {"nummer": str(len(guids)), "henvisning": f"{referral:%d.%m.%Y}"}


MORE_THAN_25 = Rule(
    id="TRT-010",
    version=1,
    code="OVER_25_BEHANDLINGER",
    text=(
        "Dette er behandling nummer {nummer} siden henvisningen {henvisning}; fra nummer 26 "
        "trengs dokumentasjon eller nytt vedtak fra Helfo. Regningen kontrolleres manuelt."
    ),
    guidance=(
        "Legg ved dokumentasjon for behandling utover 25 (voksne), eller søk Helfo om nytt "
        "vedtak (barn under 18)."
    ),
    basis=(
        "FREQ-011 (R): up to 25 treatments; more requires documentation or a new approval "
        "(Helfo, logoped og audiopedagog); counted per referral (I)"
    ),
    severity=Severity.MANUAL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_beyond_limit,
    practitioners=SPEECH,
)
