"""DAG_KVELD: a day takst (…d) claimed in the evening, at night or at a weekend, or an evening
takst (…k) claimed on a weekday between 08:00 and 16:00, is noted for the sender.

The pairs come from the tariff data (a lege takst ``Xd`` whose ``Xk`` also exists). A warning,
not a rejection: public holidays are evening takst days and no holiday calendar is kept here.
"""

from __future__ import annotations

from datetime import date, datetime

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import day_text

DAY_START, DAY_END = 8, 16  # dagtid: weekdays 08:00-16:00 (merknad D1)


def _daytime(moment: datetime) -> bool:
    return moment.weekday() < 5 and DAY_START <= moment.hour < DAY_END


def _wrong_variant(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    if bill.kreditering or not ctx.tariffs.takster:
        return None
    daytime = _daytime(bill.dato_tid)
    for takst in bill.behandling.takster:
        code = takst.kode.lower()
        stem, suffix = code[:-1], code[-1:]
        twin = {"d": stem + "k", "k": stem + "d"}.get(suffix)
        if not stem or twin is None or not ctx.tariffs.knows_takst(twin, "lege"):
            continue
        if suffix == "d" and not daytime:
            return {"takst": takst.kode, "tid": day_text(bill.dato_tid), "variant": "dagtakst"}
        if suffix == "k" and daytime:
            return {"takst": takst.kode, "tid": day_text(bill.dato_tid), "variant": "kveldstakst"}
    return None


DAY_EVENING_VARIANT = Rule(
    id="TRT-003",
    version=1,
    code="DAG_KVELD",
    text="Takst {takst} er en {variant}, men behandlingen startet {tid}.",
    guidance=(
        "Bruk d-takster på hverdager 08–16 og k-takster ellers (kveld, natt, helg og "
        "helligdager)."
    ),
    basis=(
        "TIME-013 (R meaning, I check): d/k suffix = day vs evening/night/weekend (merknad "
        "D1); a warning since holidays are not known here"
    ),
    severity=Severity.WARNING,
    scope=Scope.BILL,
    valid_from=date(2000, 1, 1),
    valid_to=None,
    check=_wrong_variant,
    practitioners=frozenset({"lege"}),
)


