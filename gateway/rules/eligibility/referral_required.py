"""MANGLER_HENVISNING: treatments that are refunded only on a referral.

- ELIG-002: a psychologist needs a referral (from a doctor, a psychologist or the child welfare
  service's head), except for the first assessment talks (takster 10a-10d and 10f; at most
  three units on a bill without one). That at most three such talks are given without a
  referral over a course of treatment is not counted: the sources do not say over what period.
- ELIG-003: a physiotherapist needs no referral since 2018-01-01, except for riding therapy
  (ridefysioterapi): a practice the register gives that specialty needs one on every bill.

A referral is a HenvisningsDato or a HenvisningsId on the bill.
"""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity

ASSESSMENT_TALKS = frozenset({"10a", "10b", "10c", "10d", "10f"})
MAX_TALKS_WITHOUT_REFERRAL = 3
#: Physiotherapy without referral from this day (riding therapy excepted).
DIRECT_ACCESS_FROM = date(2018, 1, 1)


def has_referral(bill: Enkeltregning) -> bool:
    b = bill.behandling
    return b.henvisnings_dato is not None or bool((b.henvisnings_id or "").strip())


def _psychologist(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    if bill.kreditering or has_referral(bill):
        return None
    takster = bill.behandling.takster
    others = [t.kode for t in takster if t.kode.lower() not in ASSESSMENT_TALKS]
    talks = sum(t.antall for t in takster if t.kode.lower() in ASSESSMENT_TALKS)
    if others:
        return {"hva": f"takst {', '.join(dict.fromkeys(others))}", "unntak": _EXCEPTION}
    if talks > MAX_TALKS_WITHOUT_REFERRAL:
        return {"hva": f"{talks} utredende samtaler", "unntak": _EXCEPTION}
    return None


_EXCEPTION = "bare inntil tre utredende samtaler (10a–10d, 10f) kan kreves uten henvisning"

PSYCHOLOGIST_REFERRAL = Rule(
    id="ELIG-002",
    version=1,
    code="MANGLER_HENVISNING",
    text="Regningen har ingen henvisning, men krever {hva}; {unntak}.",
    guidance=(
        "Oppgi henvisningen (dato og id) fra lege, psykolog eller barnevernsadministrasjonens "
        "leder som behandlingen bygger på."
    ),
    basis=(
        "ELIG-001 (R): forskrift 2016-06-24-796, henvisning required except for up to three "
        "utredende samtaler (10a-d, f); counted on the bill only (I)"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_psychologist,
    practitioners=frozenset({"psykolog"}),
)


def _riding_therapy(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering or has_referral(bill):
        return None
    practice = ctx.practices.on(ctx.sender_her, bill.dato_tid.date())
    if practice is None or "ridefysioterapi" not in practice.specialties:
        return None
    return {"hva": "ridefysioterapi", "unntak": "den krever henvisning også etter 2018"}


RIDING_THERAPY_REFERRAL = Rule(
    id="ELIG-003",
    version=1,
    code="MANGLER_HENVISNING",
    text="Regningen har ingen henvisning, men krever {hva}; {unntak}.",
    guidance="Oppgi henvisningen (dato og id) som ridefysioterapien bygger på.",
    basis=(
        "ELIG-002 (R): no henvisning needed since 2018-01-01 except ridefysioterapi (Helfo, "
        "regelverk for fysioterapeut); a riding-therapy practice is one the register gives "
        "that specialty (KUHR praksistype FYRT)"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=DIRECT_ACCESS_FROM,
    valid_to=None,
    check=_riding_therapy,
    practitioners=frozenset({"fysioterapeut"}),
)
