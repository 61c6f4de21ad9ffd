"""A recorded payout run as signed decisions (utbetalingsvedtak), one per payee.

The ledger (``gateway.payout.ledger``) decides what is paid, exactly once. This module only
describes a recorded run, grouped per payee (``gateway.payout.recipients``). The builder is
deterministic, and ``gateway.payout.sending`` stores each signed decision when the run is
enqueued, so a resend sends the very same bytes.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from gateway.claims.model import Ident, Organisation
from gateway.payout.decision import (
    Decision,
    DecisionBill,
    DecisionLine,
    DecisionNote,
    DecisionPaper,
    patient_reference,
)
from gateway.payout.ledger import LineRecord, PayoutError, paper_lines, run_lines, runs
from gateway.payout.recipients import Payee, Recipients
from gateway.practices.model import EMPTY_REGISTER
from gateway.rules.registry import RULES
from gateway.store.engine import Engine, Reader

_STATUS = {"payment": "godkjent", "correction": "korrigert", "reversal": "kreditert"}
_GUIDANCE = {rule.code: rule.guidance for rule in RULES if rule.guidance}


def _ore(value: int) -> Decimal:
    return (Decimal(value) / 100).quantize(Decimal("0.01"))


def reference_secret(key_file: Path) -> bytes:
    """The secret for pseudonymous patient references: derived from the private signing key,
    so it is stable, private to this gateway, and needs no key of its own."""
    return hashlib.sha256(b"gateway patient reference\0" + key_file.read_bytes()).digest()


def decisions_for_run(
    db: Engine,
    run_id: int,
    *,
    payer: Organisation,
    secret: bytes,
    on: date,
    registry: Recipients | None = None,
) -> list[Decision]:
    """One decision per payee with every bill the run paid, reversed or corrected.

    The payee of each bill comes from ``registry``, as of the run day ``on`` (a laboratory's
    refunds go to the regional health authority owning it); without a registry every sender is
    its own payee."""
    registry = registry if registry is not None else Recipients(EMPTY_REGISTER)
    lines = run_lines(db, run_id)
    run_key = next(r.run_key for r in runs(db) if r.run_id == run_id)
    by_payee: dict[str, tuple[Payee, list[LineRecord]]] = {}
    for line in lines:
        payee = registry.payee(line.receiver_her, _practitioner_type(db, line.bill_id), on)
        by_payee.setdefault(payee.her_id, (payee, []))[1].append(line)
    papers: dict[str, list[DecisionPaper]] = {}
    for her, paper_id, amount in paper_lines(db, run_id):
        paper, ptype = _paper(db, paper_id, amount)
        payee = registry.payee(her, ptype, on)
        by_payee.setdefault(payee.her_id, (payee, []))
        papers.setdefault(payee.her_id, []).append(paper)
    return [
        Decision(
            vedtak_id=f"{run_key}-{her}",
            kjoring=run_key,
            vedtaksdato=on,
            payer=payer,
            receiver=_receiver(db, payee),
            account=payee.account,
            kid=payee.kid,
            bills=tuple(_bill(db, line, secret) for line in sorted(items, key=_order)),
            papir=tuple(papers.get(her, ())),
        )
        for her, (payee, items) in sorted(by_payee.items())
    ]


def _paper(db: Reader, paper_id: int, amount: int) -> tuple[DecisionPaper, str | None]:
    row = db.one(
        "SELECT submission, period_from, period_to, bills, practice_type FROM paper_claims "
        "WHERE id = ?",
        (paper_id,),
    )
    if row is None:
        raise PayoutError(f"paper claim {paper_id} of a payout line does not exist")
    submission, first, last, bills, ptype = row
    paper = DecisionPaper(
        str(submission),
        date.fromisoformat(str(first)),
        date.fromisoformat(str(last)),
        int(bills),
        _ore(amount),
    )
    return paper, None if ptype is None else str(ptype)


def _practitioner_type(db: Reader, bill_id: int) -> str | None:
    row = db.one("SELECT practitioner_type FROM bills WHERE id = ?", (bill_id,))
    return None if row is None or row[0] is None else str(row[0])


def _order(line: LineRecord) -> tuple[int, int]:
    return (line.bill_id, line.line_id)


def _receiver(db: Reader, payee: Payee) -> Organisation:
    """The payee as an organisation: its name in the register, else the name it sends under."""
    name = payee.name
    if name is None:
        row = db.one(
            "SELECT m.sender_name FROM bills b JOIN messages m ON m.id = b.message_id "
            "WHERE b.sender_her = ? ORDER BY b.id DESC LIMIT 1",
            (payee.her_id,),
        )
        name = str(row[0]) if row and row[0] else f"HER-id {payee.her_id}"
    idents = [Ident(payee.her_id, "HER")]
    if payee.enh_id:
        idents.append(Ident(payee.enh_id, "ENH"))
    return Organisation(name=name, idents=tuple(idents))


def _bill(db: Reader, line: LineRecord, secret: bytes) -> DecisionBill:
    found = db.one(
        "SELECT regning_nr, guid, patient_id, dato_tid FROM bills WHERE id = ?", (line.bill_id,)
    )
    assert found is not None  # a payout line references its bill
    regning_nr, guid, patient_id, dato_tid = found
    takster = db.rows(
        "SELECT code, antall, amount_ore FROM bill_lines WHERE bill_id = ? AND kind = 'takst' "
        "ORDER BY position",
        (line.bill_id,),
    )
    notes = db.rows(
        "SELECT code, text FROM findings WHERE bill_id = ? ORDER BY id", (line.bill_id,)
    )
    return DecisionBill(
        regning_nr=str(regning_nr),
        guid=str(guid),
        patient_ref=patient_reference(str(patient_id), secret),
        behandlingsdato=datetime.fromisoformat(str(dato_tid)),
        lines=tuple(
            DecisionLine(str(code), int(antall), _ore(int(amount or 0)))
            for code, antall, amount in takster
        ),
        status=_STATUS[line.kind],
        utbetalt=_ore(line.amount_ore),
        notes=tuple(
            DecisionNote(str(code), str(text), _GUIDANCE.get(str(code))) for code, text in notes
        ),
    )
