"""HPV_SCREENING: HPV analyses are refunded only under the screening criteria.

The cervical cancer screening programme (Livmorhalsprogrammet) tests women aged 25 to 69 for HPV;
an HPV analysis (``common.HPV_CODES``) for anyone else (a man, a woman younger or older, a
patient whose id does not tell) is not refunded. The criteria are data here (``SCREENING``):
follow-up of abnormal findings after 69 is part of the programme, but the claim does not tell a
follow-up from a first test, so such a bill is refused and left to a case worker's override.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.claims.model import Enkeltregning
from gateway.claims.persons import age_on, is_female
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.lab.common import HPV_CODES, LAB_PRACTITIONERS, NLK_START, applies


@dataclass(frozen=True, slots=True)
class Screening:
    """Who the screening programme tests."""

    female: bool = True
    min_age: int = 25
    max_age: int = 69


SCREENING = Screening()


def _why_not(bill: Enkeltregning) -> str | None:
    """Why the patient is outside the criteria, or None when inside."""
    female = is_female(bill.patient.id)
    age = age_on(bill.patient.id, bill.dato_tid.date())
    if female is None or age is None:
        return "pasientens kjønn og alder kan ikke leses av identifikatoren"
    if SCREENING.female and not female:
        return "pasienten er ikke kvinne"
    if not SCREENING.min_age <= age <= SCREENING.max_age:
        return f"pasienten er {age} år"
    return None


def _outside_screening(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if not applies(bill, ctx):
        return None
    codes = [t.kode for t in bill.behandling.takster if t.kode.upper() in HPV_CODES]
    if not codes:
        return None
    reason = _why_not(bill)
    if reason is None:
        return None
    return {
        "koder": ", ".join(dict.fromkeys(codes)),
        "grunn": reason,
        "kriterier": f"kvinner {SCREENING.min_age}–{SCREENING.max_age} år",
    }


HPV_SCREENING = Rule(
    id="LAB-010",
    version=1,
    code="HPV_SCREENING",
    text=(
        "HPV-analyse {koder} refunderes bare etter screeningkriteriene i "
        "Livmorhalsprogrammet ({kriterier}); {grunn}."
    ),
    guidance=(
        "Krev HPV-analyser bare for prøver tatt etter kriteriene i Livmorhalsprogrammet. "
        "Oppfølging av unormale funn utenfor aldersgruppen kontrolleres av Helfo."
    ),
    basis=(
        "HPV-analyser refunderes bare etter screeningkriteriene i Livmorhalsprogrammet "
        "(kvinner 25-69 år, R); HPV-kodene er illustrative (I)"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=NLK_START,
    valid_to=None,
    check=_outside_screening,
    practitioners=LAB_PRACTITIONERS,
)
