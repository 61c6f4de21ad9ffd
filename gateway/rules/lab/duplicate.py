"""NLK_DUPLIKAT: the same NLK code for the same patient and analysis date may be claimed once.

Earlier approved bills of the same message and approved, uncredited bills in the store (any
laboratory) count; codes that may repeat (list codes, unspecific codes, blood-compatibility
tests per unit, verification measurements: ``common.may_repeat``) are exempt. The
later bill is rejected, naming the code and the earlier bill. A stored bill with the same Guid
from the same sender is the bill itself (a replay), and one credited earlier in the message no
longer counts. Repeats inside one bill are ``repetition``'s business.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.lab.common import LAB_PRACTITIONERS, NLK_START, applies, lines, may_repeat


def _duplicates(bill: Enkeltregning, index: int, ctx: ClaimContext) -> Facts | None:
    if not applies(bill, ctx):
        return None
    wanted: dict[str, str] = {}  # upper-case code -> code as sent
    for takst, entry in lines(bill, ctx):
        if not may_repeat(takst.kode, entry):
            wanted.setdefault(takst.kode.upper(), takst.kode)
    if not wanted:
        return None
    day = bill.dato_tid.date()
    patient = bill.patient.id
    found: dict[str, str] = {}  # upper-case code -> earlier RegningNr
    credited: set[str] = set()
    for earlier in ctx.earlier.approved():
        if earlier.kreditering:
            credited.add(earlier.guid)
            continue
        if earlier.patient.id != patient or earlier.dato_tid.date() != day:
            continue
        for takst in earlier.behandling.takster:
            code = takst.kode.upper()
            if code in wanted:
                found.setdefault(code, earlier.regning_nr)
    start = datetime.combine(day, time())
    for stored in ctx.history.patient_bills_between(patient, start, start + timedelta(days=1)):
        if stored.sender_her == ctx.sender_her and (
            stored.guid == bill.guid or stored.guid in credited
        ):
            continue
        for kode, _antall in stored.takster:
            code = kode.upper()
            if code in wanted:
                found.setdefault(code, stored.regning_nr)
    if not found:
        return None
    ordered = [code for code in wanted if code in found]
    return {
        "koder": ", ".join(wanted[code] for code in ordered),
        "dato": day.isoformat(),
        "tidligere": ", ".join(f"{wanted[code]}: regningsnummer {found[code]}" for code in ordered),
    }


NLK_DUPLIKAT = Rule(
    id="LAB-005",
    version=2,
    code="NLK_DUPLIKAT",
    text=(
        "Duplikat: kode {koder} er allerede krevd for samme pasient med analysedato {dato} "
        "({tidligere}). En analyse kan bare kreves én gang per pasient og analysedato."
    ),
    guidance=(
        "Krev hver analyse bare én gang per pasient og dag. Listekodene (NPU21747, NPU26765, "
        "NPU20200), uspesifikke koder, forlikelighetsprøver (per blodenhet) og "
        "verifikasjonsmålinger kan kreves flere ganger."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=NLK_START,
    valid_to=None,
    check=_duplicates,
    practitioners=LAB_PRACTITIONERS,
    basis=(
        "Katalog CORR-001 (S): samme pasient og takst krevd to ganger avvises som duplikat; "
        "duplikatkontroll, unntatt listekoder, uspesifikke koder, forlikelighetsprøver per "
        "enhet og verifikasjonsmålinger (kodene illustrative, I)"
    ),
)
