"""K_TAKST_DRIFTSAVTALE: the special surgery takster (K-takster) are for doctors with an
operating agreement (driftstilskudd from the health authority), as the register records it."""

from __future__ import annotations

import re

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.practice.common import EARLIEST, practice_on_treatment, register_applies

#: Normaltariffen's særskilte kirurgitakster: K01a … K02g (a K, two digits, a letter).
_K_TAKST = re.compile(r"[Kk][0-9]{2}[a-zA-Z]?")


def _without_agreement(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if not register_applies(bill, ctx):
        return None
    codes = [t.kode for t in bill.behandling.takster if _K_TAKST.fullmatch(t.kode)]
    if not codes:
        return None
    practice = practice_on_treatment(bill, ctx)
    if practice is None or practice.operating_agreement_on(bill.dato_tid.date()):
        return None
    return {"koder": ", ".join(dict.fromkeys(codes)), "navn": practice.name}


SURGERY_NEEDS_AGREEMENT = Rule(
    id="PRAC-005",
    version=1,
    code="K_TAKST_DRIFTSAVTALE",
    text=(
        "Takst {koder} (særskilt kirurgitakst) kan bare kreves av lege med driftsavtale "
        "(driftstilskudd); {navn} har ingen på behandlingsdatoen."
    ),
    guidance="K-takster kreves av avtalespesialist med driftstilskudd, eller vikar for en.",
    basis=(
        "PROV-004 (R): særskilte kirurgitakster only for leger with driftstilskudd "
        "(Spesialisttariffen m-2234); the register's driftsavtale decides"
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_without_agreement,
    practitioners=frozenset({"lege"}),
)
