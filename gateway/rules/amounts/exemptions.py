"""Egenandel exemptions (kodeverk 7461) and AMT-003 FEIL_FRITAK.

A bill's KodeEgenandel says why the patient paid no egenandel; HELFO then pays the honorar
instead of the refusjon. The code must be one of kodeverk 7461's, and B (barn under 16 år)
requires the patient to be under 16 on the treatment date (EGEN-003, basis R + I). Without a
code, children under 16 still pay no egenandel at lege, psykolog and fysioterapeut (EGEN-004,
basis R), and psykolog patients under 18 none either (EGEN-005, basis R): ``pricing`` folds
these into what AMT-001 expects.

A frikort (F) is not looked up: the frikort register is not available to this gateway (KUHR's
merknad 710, EGEN-001, needs it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.claims.persons import age_on
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import EARLIEST, listing

#: Kodeverk 7461, årsak til fritak for egenandel (egenandel.csv, from NAV's KUHR API docs).
EXEMPTIONS: Mapping[str, str] = {
    "A": "allmennfarlig smittsom sykdom",
    "B": "barn under 16 år",
    "F": "frikort",
    "G": "HIV-infeksjon",
    "H": "pasientens tilstand er til hinder for å kreve egenandel",
}

CHILD_AGE = 16  # code B, and no egenandel without a code (EGEN-004)
PSYCHOLOGIST_FREE_AGE = 18  # EGEN-005
#: Practitioner types whose under-16 patients pay no egenandel (EGEN-004; laboratories and
#: poliklinikker too, but they are not priced from the takst table).
CHILD_FREE_TYPES = frozenset({"lege", "psykolog", "fysioterapeut"})
#: Ident types whose digits carry a birth date.
DATED_IDS = frozenset({"FNR", "DNR", "HNR"})


def exemption_code(bill: Enkeltregning) -> str | None:
    """The bill's KodeEgenandel, upper-case, or ``None``."""
    code = bill.behandling.kode_egenandel
    if code is None or not code.value.strip():
        return None
    return code.value.strip().upper()


def patient_age(bill: Enkeltregning, on: date | None = None) -> int | None:
    """The patient's age on the treatment date (or ``on``), when the id tells it."""
    if bill.patient.type.upper() not in DATED_IDS:
        return None
    return age_on(bill.patient.id, on or bill.dato_tid.date())


@dataclass(frozen=True, slots=True)
class Pricing:
    """Which tariff column HELFO pays for a bill, and why (for the texts)."""

    honorar: bool
    why: str


def pricing(bill: Enkeltregning, practitioner: str) -> Pricing | None:
    """The tariff column for ``bill``, or ``None`` when its exemption code is not valid
    (AMT-003 rejects it; the amount cannot be judged)."""
    code = exemption_code(bill)
    age = patient_age(bill)
    if code is not None:
        if _invalid_reason(code, age) is not None:
            return None
        return Pricing(True, f"honorartakst (fritakskode {code}, {EXEMPTIONS[code]})")
    if age is not None and age < CHILD_AGE and practitioner in CHILD_FREE_TYPES:
        return Pricing(True, "honorartakst (pasienten er under 16 år og betaler ikke egenandel)")
    if age is not None and age < PSYCHOLOGIST_FREE_AGE and practitioner == "psykolog":
        return Pricing(True, "honorartakst (pasienten er under 18 år og betaler ikke egenandel)")
    return Pricing(False, "refusjonstakst")


def _invalid_reason(code: str, age: int | None) -> str | None:
    if code not in EXEMPTIONS:
        return f"koden finnes ikke i kodeverk 7461 (gyldige koder er {listing(EXEMPTIONS)})"
    if code == "B" and age is not None and age >= CHILD_AGE:
        return (
            f"kode B gjelder barn under {CHILD_AGE} år, men pasienten var {age} år "
            "på behandlingsdatoen"
        )
    return None


def _wrong_exemption(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    if bill.kreditering:
        return None
    code = exemption_code(bill)
    if code is None:
        return None
    reason = _invalid_reason(code, patient_age(bill))
    if reason is None:
        return None
    return {"kode": code, "grunn": reason}


WRONG_EXEMPTION = Rule(
    id="AMT-003",
    version=1,
    code="FEIL_FRITAK",
    text="Fritakskode for egenandel {kode} kan ikke brukes: {grunn}.",
    guidance=(
        "Bruk en fritakskode fra kodeverk 7461 som passer pasienten på behandlingsdatoen, "
        "eller ingen kode når ingen fritaksgrunn gjelder (barn under 16 år hos lege, psykolog "
        "og fysioterapeut er fritatt også uten kode)."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_wrong_exemption,
    basis="EGEN-003 (R + I); kodeverk 7461 (egenandel.csv)",
)
