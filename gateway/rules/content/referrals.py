"""What a referral must say on the bill.

- CONT-004 MANGLER_HENVISER: an orthodontist's 600-takster name the referring practitioner
  (RelatertBehandler, HPR) and, from 2026-01-01, the referral date (CONT-011).
- CONT-005 MANGLER_HENVISNINGS_ID: an orthoptist's bill carries the referral id (CONT-012).
"""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity

#: The referral date is required on 600-takster from this day.
REFERRAL_DATE_FROM = date(2026, 1, 1)


def _orthodontic_referral(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    if bill.kreditering:
        return None
    codes = [t.kode for t in bill.behandling.takster if t.kode.startswith("6")]
    if not codes:
        return None
    missing = []
    if not (bill.behandling.relatert_behandler or "").strip():
        missing.append("henvisende behandler (RelatertBehandler)")
    needs_date = bill.dato_tid.date() >= REFERRAL_DATE_FROM
    if needs_date and bill.behandling.henvisnings_dato is None:
        missing.append("henvisningsdato")
    if not missing:
        return None
    return {"takst": codes[0], "mangler": " og ".join(missing)}


ORTHODONTIC_REFERRER = Rule(
    id="CONT-004",
    version=1,
    code="MANGLER_HENVISER",
    text="Regningen med takst {takst} mangler {mangler}.",
    guidance=(
        "Oppgi HPR-nummeret til den som henviste som RelatertBehandler, og henvisningsdatoen "
        "(påkrevd fra 1. januar 2026)."
    ),
    basis=(
        "CONT-011 (R): 600-takster: relatertBehandler = HPR of the referrer; henvisningsdato "
        "mandatory from 2026-01-01 (KUHR BKM documentation); outcome I"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_orthodontic_referral,
    practitioners=frozenset({"kjeveortoped"}),
)


def _no_referral_id(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    if bill.kreditering or (bill.behandling.henvisnings_id or "").strip():
        return None
    return {"regning": bill.regning_nr}


ORTHOPTIST_REFERRAL_ID = Rule(
    id="CONT-005",
    version=1,
    code="MANGLER_HENVISNINGS_ID",
    text="Regning {regning} fra ortoptist mangler henvisningens id (HenvisningsId).",
    guidance="Oppgi id-en til henvisningen behandlingen bygger på.",
    basis="CONT-012 (R): henvisning.id mandatory for ortoptist (KUHR BKM documentation)",
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_no_referral_id,
    practitioners=frozenset({"ortoptist"}),
)
