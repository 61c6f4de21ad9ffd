"""Psychologists' takster that stand alone on a bill.

- TRT-005 SAMARBEIDSMOTE: the interdisciplinary meeting (33a/33b) is not claimed together with a
  consultation (COMB-013).
- TRT-006 UNDERSOKELSE_TIDSROM: the examination takster 11-19 cannot be claimed for the same time
  span as other takster (TIME-010); a bill is one time span.
"""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import listing
from gateway.rules.treatment.code_sets import codes_on, shown

PSYKOLOG = frozenset({"psykolog"})
_MEETING = ("33a", "33b")
#: The examination takster: 11 to 19, with any letter after the number (11a, 12, 15b ...).
_EXAMINATIONS = tuple(str(n) for n in range(11, 20))


def _is_examination(code: str) -> bool:
    return code.rstrip("abcdefghijklmnopqrstuvwxyz") in _EXAMINATIONS


def _meeting_with_consultation(
    bill: Enkeltregning, _index: int, _ctx: ClaimContext
) -> Facts | None:
    if bill.kreditering:
        return None
    found = codes_on(bill)
    meetings = shown(found, _MEETING)
    others = [written for code, written in found.items() if code not in _MEETING]
    if not meetings or not others:
        return None
    return {"mote": listing(meetings), "andre": listing(others)}


MEETING_ALONE = Rule(
    id="TRT-005",
    version=1,
    code="SAMARBEIDSMOTE",
    text=(
        "Tverrfaglig samarbeidsmøte ({mote}) kan ikke kreves samtidig med en konsultasjon "
        "({andre})."
    ),
    guidance=(
        "Send samarbeidsmøtet og konsultasjonen på hver sin regning, med hvert sitt tidspunkt."
    ),
    basis="COMB-013 (R): 33a/33b not with a simultaneous consultation (regelverk for psykolog)",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_meeting_with_consultation,
    practitioners=PSYKOLOG,
    codes=frozenset(_MEETING),
)


def _examination_with_others(
    bill: Enkeltregning, _index: int, _ctx: ClaimContext
) -> Facts | None:
    if bill.kreditering:
        return None
    found = codes_on(bill)
    examinations = [written for code, written in found.items() if _is_examination(code)]
    others = [written for code, written in found.items() if not _is_examination(code)]
    if not examinations or not others:
        return None
    return {"undersokelse": listing(examinations), "andre": listing(others)}


EXAMINATION_ALONE = Rule(
    id="TRT-006",
    version=1,
    code="UNDERSOKELSE_TIDSROM",
    text=(
        "Undersøkelsestakst {undersokelse} kan ikke kreves for samme tidsrom som andre "
        "takster ({andre})."
    ),
    guidance="Oppgi undersøkelsen og annen behandling som egne regninger med egne starttider.",
    basis=(
        "TIME-010 (R): takster 11-19 not for the same time span as other takster "
        "(Helsedirektoratet's merknader til takstene 11-19); one bill is one time span (I)"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_examination_with_others,
    practitioners=PSYKOLOG,
)
