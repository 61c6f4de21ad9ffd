"""UGYLDIG_PASIENT_ID: a patient identified by a national identity number (FNR, D- or
H-number) whose number is not one; nobody can be paid for an unidentifiable patient.

Other identifier types (foreign, UID/DUF) are not judged here: their form is not public.
"""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.claims.persons import birth_date
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity

#: Identifier types whose digits must carry a birth date (fødselsnummer, D- and H-number).
NATIONAL_IDS = frozenset({"FNR", "DNR", "HNR"})


def _unidentifiable(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    kind = bill.patient.type.strip().upper()
    if bill.kreditering or kind not in NATIONAL_IDS or birth_date(bill.patient.id) is not None:
        return None
    return {"type": kind}  # never the number itself: texts are stored and sent


INVALID_PATIENT_ID = Rule(
    id="CONT-001",
    version=1,
    code="UGYLDIG_PASIENT_ID",
    text=(
        "Pasientens identifikator av typen {type} er ikke et gyldig fødselsnummer, D-nummer "
        "eller H-nummer; pasienten kan ikke identifiseres."
    ),
    guidance=(
        "Oppgi pasientens fødselsnummer eller D-nummer (H-nummer bare når annet ikke finnes), "
        "med riktig type."
    ),
    basis=(
        "CONT-001 (R): the patient is identified by FNR/DNR (HNR only when unavoidable); "
        "REJECT-BILL if unidentifiable (I)"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_unidentifiable,
)
