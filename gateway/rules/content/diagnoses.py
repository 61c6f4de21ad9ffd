"""FEIL_DIAGNOSEKODEVERK: a diagnosis is coded in the code system of the practice type.

ICPC-2 (or ICPC-2B) at fastlege, legevakt, physiotherapist and chiropractor; ICD-10 at
specialists, psychologists, orthoptists and fritt behandlingsvalg (CONT-006). Which of those a
doctor is, only the practice register knows; without it the rule stands aside. A diagnosis
without a code system (no ``S``) is not judged; dentists may use ICD-10 or ICD-DA-3 and are not
judged either (the OID of ICD-DA-3 is not in our sources). That a doctor's bill has a diagnosis
at all is TAR-006's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity

ICD10 = "2.16.578.1.12.4.1.1.7110"
ICPC2 = "2.16.578.1.12.4.1.1.7170"
ICPC2B = "2.16.578.1.12.4.1.1.7171"
PHBU = "2.16.578.1.12.4.1.1.7112"  # the axes of the BUP classification (child psychiatry)

_NAMES = {ICD10: "ICD-10", ICPC2: "ICPC-2", ICPC2B: "ICPC-2B", PHBU: "BUP-aksene"}
_PRIMARY_CARE = frozenset({ICPC2, ICPC2B})
_SPECIALIST = frozenset({ICD10, PHBU})

#: Practice type -> the code systems its diagnoses may use.
SYSTEMS: Mapping[str, frozenset[str]] = {
    "fastlege": _PRIMARY_CARE,
    "legevakt": _PRIMARY_CARE,
    "fysioterapeut": _PRIMARY_CARE,
    "kiropraktor": _PRIMARY_CARE,
    "spesialistlege": _SPECIALIST,
    "psykologspesialist": _SPECIALIST,
    "ortoptist": _SPECIALIST,
    "fritt_behandlingsvalg": _SPECIALIST,
}


def _wrong_system(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering:
        return None
    practice = ctx.practices.on(ctx.sender_her, bill.dato_tid.date())
    allowed = SYSTEMS.get(practice.practice_type) if practice is not None else None
    if practice is None or allowed is None:
        return None
    for diagnosis in bill.behandling.diagnoser:
        system = (diagnosis.system or "").strip()
        if system and system not in allowed:
            return {
                "kode": diagnosis.value,
                "kodeverk": _NAMES.get(system, system),
                "praksistype": practice.kind.name.lower(),
                "riktig": " eller ".join(sorted(_NAMES[s] for s in allowed)),
            }
    return None


WRONG_DIAGNOSIS_SYSTEM = Rule(
    id="CONT-002",
    version=1,
    code="FEIL_DIAGNOSEKODEVERK",
    text=(
        "Diagnosen {kode} er kodet med {kodeverk}; for {praksistype} skal diagnoser kodes med "
        "{riktig}."
    ),
    guidance="Kod diagnosen i kodeverket som gjelder for praksistypen, og send regningen på nytt.",
    basis=(
        "CONT-006 (R): diagnosis code system by profession (KUHR BKM documentation); "
        "REJECT-BILL (I); the practice type from the register"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_wrong_system,
)
