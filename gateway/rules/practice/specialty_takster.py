"""SPESIALITET_TAKST: takster reserved to a specialty need a practice registered with it."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.practice.common import EARLIEST, practice_on_treatment, register_applies

#: Takst (lower case) -> the specialty a lege practice must have to claim it.
SPECIALTY_TAKSTER: Mapping[str, str] = {"601": "nevrologi"}


def _wrong_specialty(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if not register_applies(bill, ctx):
        return None
    practice = practice_on_treatment(bill, ctx)
    if practice is None:
        return None
    for takst in bill.behandling.takster:
        needed = SPECIALTY_TAKSTER.get(takst.kode.lower())
        if needed is not None and needed not in practice.specialties:
            return {
                "takst": takst.kode,
                "fagomrade": needed,
                "navn": practice.name,
                "registrert": ", ".join(practice.specialties) or "ingen",
            }
    return None


SPECIALTY_TAKST = Rule(
    id="PRAC-006",
    version=1,
    code="SPESIALITET_TAKST",
    text=(
        "Takst {takst} kan bare kreves av spesialist i {fagomrade}; {navn} er registrert med "
        "fagområde {registrert}."
    ),
    guidance="Bruk takster som hører til praksisens registrerte fagområder.",
    basis=(
        "FREQ-010 (R): takst 601 for nevrolog only (Spesialisttariffen m-4799); the "
        "register's specialties decide. Its 'once per patient per disease' is not checked: "
        "stored bills keep no diagnoses for the history"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_wrong_specialty,
    practitioners=frozenset({"lege"}),
    codes=frozenset(SPECIALTY_TAKSTER),
)
