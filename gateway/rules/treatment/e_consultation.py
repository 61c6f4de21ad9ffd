"""EKONSULTASJON_KOMBINASJON: at a legevakt, an e-konsultasjon (2ae, 2aek) is accompanied only
by the takster the tariff lists for it there.

At a fastlege the tariff uses a longer whitelist the sources do not give; that side is left to
the tariff data's invalid combinations (TAR-002). Fastlege and legevakt are told apart by the
practice register, so the rule stands aside for a sender it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import listing
from gateway.rules.treatment.code_sets import codes_on, shown

#: E-konsultasjon -> what may accompany it at a legevakt (Spesialisttariffen m-866).
LEGEVAKT_WHITELIST: Mapping[str, frozenset[str]] = {
    "2ae": frozenset({"2cd", "2cdd", "2dd", "7", "8", "612a", "615", "616", "617"}),
    "2aek": frozenset(
        {"2cd", "2cdd", "2dd", "2ck", "2dk", "7", "8", "612a", "615", "616", "617"}
    ),
}


def _outside_whitelist(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering:
        return None
    practice = ctx.practices.on(ctx.sender_her, bill.dato_tid.date())
    if practice is None or practice.practice_type != "legevakt":
        return None
    found = codes_on(bill)
    for consultation, allowed in LEGEVAKT_WHITELIST.items():
        if consultation not in found:
            continue
        others = [c for c in found if c != consultation and c not in allowed]
        if others:
            return {
                "takst": found[consultation],
                "andre": listing(shown(found, others)),
                "tillatt": ", ".join(sorted(allowed)),
            }
    return None


E_CONSULTATION_AT_LEGEVAKT = Rule(
    id="TRT-001",
    version=1,
    code="EKONSULTASJON_KOMBINASJON",
    text=(
        "På legevakt kan e-konsultasjon {takst} bare kombineres med {tillatt}; regningen har "
        "også {andre}."
    ),
    guidance="Før bare de takstene som kan følge e-konsultasjonen på legevakt.",
    basis="COMB-004 (R): 2ae/2aek whitelist at legevakt (Spesialisttariffen m-866)",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_outside_whitelist,
    practitioners=frozenset({"lege"}),
    codes=frozenset(LEGEVAKT_WHITELIST),
)
