"""UTEN_TAKSTDATA: a refund from a known practice type whose tariff the data in force does not
hold goes to manual control (fail closed, like UKJENT_BEHANDLERTYPE).

Private X-ray institutes, outpatient psychiatry, health centres, audiopedagogues,
orthoptists, patient travel and fritt behandlingsvalg are known types (they never fall to "type
unknown"), but the tariff table holds no takster for them, so the tariff and amount rules
cannot judge their amounts. A gateway with no tariff data at all is left alone (the tariff
rules stand aside everywhere then, and the daemon says so at start).
"""

from __future__ import annotations

from gateway.claims.model import Enkeltregning
from gateway.claims.practitioner import EGENANDEL_ONLY
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.lab.common import LAB_PRACTITIONERS
from gateway.rules.practice.common import EARLIEST, claims_refund
from gateway.rules.tariff.support import covered_types


def _uncovered(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    family = ctx.practitioner
    if family is None or family in EGENANDEL_ONLY or bill.kreditering:
        return None
    book = ctx.tariffs
    if not (book.takster or book.nlk_codes) or not claims_refund(bill):
        return None
    covered = bool(book.nlk_codes) if family in LAB_PRACTITIONERS else family in covered_types(book)
    if covered:
        return None
    return {"type": family, "versjon": book.version}


UNCOVERED_TYPE = Rule(
    id="PRAC-008",
    version=1,
    code="UTEN_TAKSTDATA",
    text=(
        "Takstene for {type} finnes ikke i takstdataene som gjelder ({versjon}), så beløpene "
        "kunne ikke kontrolleres. Regningen kontrolleres manuelt før utbetaling."
    ),
    guidance="Ingen endring trengs; Helfo kontrollerer regningen manuelt.",
    basis=(
        "Fail closed (I): a known practice type is not 'unknown', but no bill is approved "
        "unchecked that the tariff and amount rules could not judge"
    ),
    severity=Severity.MANUAL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_uncovered,
)
