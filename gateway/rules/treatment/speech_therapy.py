"""LOGOPED_KOMBINASJON: a speech therapist's or audiopedagogue's treatment takster.

A1a stands with nothing but A1b, B10 and B1; A1a, A2a, A3a, A4a and A7a each count as one
treatment and are not combined on one bill.
"""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import listing
from gateway.rules.treatment.code_sets import codes_on, shown

SPEECH = frozenset({"logoped", "audiopedagog"})
_TREATMENTS = ("a1a", "a2a", "a3a", "a4a", "a7a")
_WITH_A1A = frozenset({"a1a", "a1b", "b10", "b1"})


def _combined(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    if bill.kreditering:
        return None
    found = codes_on(bill)
    treatments = shown(found, _TREATMENTS)
    if len(treatments) > 1:
        return {"feil": f"{listing(treatments)} er hver sin behandling og kan ikke kombineres"}
    if "a1a" in found:
        others = [written for code, written in found.items() if code not in _WITH_A1A]
        if others:
            return {"feil": f"{found['a1a']} kan bare kombineres med A1b, B10 og B1, ikke "
                    f"{listing(others)}"}  # fmt: skip
    return None


SPEECH_COMBINATION = Rule(
    id="TRT-007",
    version=1,
    code="LOGOPED_KOMBINASJON",
    text="Takstene er kombinert feil: {feil}.",
    guidance="Send hver behandling (A1a, A2a, A3a, A4a, A7a) på sin egen regning.",
    basis=(
        "COMB-014 (R): A1a invalid with all except A1b, B10, B1; A1a, A2a, A3a, A4a, A7a not "
        "combined on one regning (Helfo takst A1a og A1b)"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_combined,
    practitioners=SPEECH,
    codes=frozenset(_TREATMENTS),
)
