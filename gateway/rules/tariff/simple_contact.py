"""TAR-011, KUHR merknad 470: a simple patient contact (1bd, 1be, 1bk) on its own bill within 60
minutes before or after a consultation for the same patient is rejected (COMB-002, basis S).

The 1b takster are "ugyldig med alle" (TAR-002 catches them on the consultation's own bill);
moving them to a separate bill does not make them payable. Only the practitioner's own
consultations count (the contact is part of that consultation); a consultation with another
doctor within the hour does not. The bills looked at are approved bills in the store, bills
approved earlier in the same message and the later bills of the same message. A consultation
that arrives after an approved 1b bill does not undo that approval.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import EARLIEST, day_text, listing

SIMPLE_CONTACT = frozenset({"1bd", "1be", "1bk"})
CONSULTATION = frozenset({"2ad", "2ak", "2ae", "2aek"})
WINDOW = timedelta(minutes=60)


def _candidates(
    bill: Enkeltregning, index: int, ctx: ClaimContext
) -> Iterator[tuple[str, datetime, list[str]]]:
    patient = bill.patient.id
    start, end = bill.dato_tid - WINDOW, bill.dato_tid + WINDOW
    for stored in ctx.history.patient_bills_between(patient, start, end + timedelta(seconds=1)):
        same = (
            stored.practitioner_id == ctx.practitioner_id
            if ctx.practitioner_id
            else stored.sender_her == ctx.sender_her
        )
        if same and stored.guid != bill.guid:
            yield stored.regning_nr, stored.dato_tid, [k for k, _ in stored.takster]
    in_message = [*ctx.earlier.approved(), *ctx.krav.regninger[index + 1 :]]
    for other in in_message:
        if other is bill or other.kreditering or other.patient.id != patient:
            continue
        if start <= other.dato_tid <= end:
            yield other.regning_nr, other.dato_tid, [t.kode for t in other.behandling.takster]


def _contact_near_consultation(bill: Enkeltregning, index: int, ctx: ClaimContext) -> Facts | None:
    if ctx.practitioner != "lege" or bill.kreditering:
        return None
    contacts = [t.kode for t in bill.behandling.takster if t.kode.lower() in SIMPLE_CONTACT]
    if not contacts:
        return None
    for regning_nr, when, codes in _candidates(bill, index, ctx):
        consultations = [c for c in codes if c.lower() in CONSULTATION]
        if consultations:
            return {
                "takst": listing(contacts),
                "regning_nr": regning_nr,
                "dato": day_text(when),
                "konsultasjon": listing(consultations),
            }
    return None


SIMPLE_CONTACT_NEAR_CONSULTATION = Rule(
    id="TAR-011",
    version=1,
    code="470",
    text=(
        "Takst {takst} (enkel pasientkontakt) kan ikke kreves på egen regning innen 60 minutter "
        "før eller etter en konsultasjon for samme pasient: regning {regning_nr} av {dato} har "
        "takst {konsultasjon}."
    ),
    guidance=(
        "En enkel pasientkontakt i forbindelse med en konsultasjon er en del av konsultasjonen "
        "og kan ikke kreves i tillegg, heller ikke på en egen regning."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_contact_near_consultation,
    practitioners=frozenset({"lege"}),
    codes=SIMPLE_CONTACT,
    basis="COMB-002 (S, KUHR merknad 470)",
)
