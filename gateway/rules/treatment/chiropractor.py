"""KIROPRAKTOR_KOMBINASJON: K1 and K2 are not claimed in the same consultation, and a
collaboration meeting (K3a/K3b) is not claimed together with a consultation."""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import listing
from gateway.rules.treatment.code_sets import codes_on, shown

_CONSULTATIONS = ("k1", "k2")
_MEETINGS = ("k3a", "k3b")


def _combined(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    if bill.kreditering:
        return None
    found = codes_on(bill)
    consultations = shown(found, _CONSULTATIONS)
    meetings = shown(found, _MEETINGS)
    if len(consultations) > 1:
        return {"koder": listing(consultations), "hvorfor": "i samme konsultasjon"}
    if consultations and meetings:
        return {
            "koder": listing([*meetings, *consultations]),
            "hvorfor": "fordi samarbeidsmøtet ikke kan kreves samtidig med en konsultasjon",
        }
    return None


CHIROPRACTOR_COMBINATION = Rule(
    id="TRT-004",
    version=1,
    code="KIROPRAKTOR_KOMBINASJON",
    text="Takstene {koder} kan ikke kreves sammen {hvorfor}.",
    guidance="Krev K1 eller K2 for konsultasjonen, og samarbeidsmøter (K3a/K3b) for seg.",
    basis=(
        "COMB-011 (R): K1 and K2 not in the same consultation; COMB-012 (R): K3a/K3b not with "
        "a simultaneous consultation (checked on one bill; cancelled meetings and NAV "
        "dialogmøter are not in the claim)"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_combined,
    practitioners=frozenset({"kiropraktor"}),
    codes=frozenset(_CONSULTATIONS + _MEETINGS),
)
