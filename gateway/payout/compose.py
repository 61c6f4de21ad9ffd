"""A recorded payout run as signed decisions (utbetalingsvedtak), one per receiver, as files.

The ledger (``gateway.payout.ledger``) decides what is paid, exactly once. This module only
describes a recorded run: the same run always gives the same decision ids and bytes (the
builder is deterministic and RSA PKCS#1 v1.5 signatures are too), so writing a run's decisions
again after a crash, or on ``resend``, replaces files with identical ones.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from gateway.claims.model import Ident, Organisation
from gateway.files import fsync_dir, write_atomically
from gateway.payout.decision import (
    Decision,
    DecisionBill,
    DecisionLine,
    DecisionNote,
    patient_reference,
    signed_decision_bytes,
)
from gateway.payout.ledger import LineRecord, run_lines, runs
from gateway.receipts.signing import Signer
from gateway.rules.registry import RULES

_STATUS = {"payment": "godkjent", "correction": "korrigert", "reversal": "kreditert"}
_GUIDANCE = {rule.code: rule.guidance for rule in RULES if rule.guidance}


def _ore(value: int) -> Decimal:
    return (Decimal(value) / 100).quantize(Decimal("0.01"))


def reference_secret(key_file: Path) -> bytes:
    """The secret for pseudonymous patient references: derived from the private signing key,
    so it is stable, private to this gateway, and needs no key of its own."""
    return hashlib.sha256(b"gateway patient reference\0" + key_file.read_bytes()).digest()


def decisions_for_run(
    db_path: Path, run_id: int, *, payer: Organisation, secret: bytes, on: date
) -> list[Decision]:
    """One decision per receiver with every bill the run paid, reversed or corrected."""
    lines = run_lines(db_path, run_id)
    run_key = next(r.run_key for r in runs(db_path) if r.run_id == run_id)
    by_receiver: dict[str, list[LineRecord]] = defaultdict(list)
    for line in lines:
        by_receiver[line.receiver_her].append(line)
    db = sqlite3.connect(db_path)
    try:
        return [
            Decision(
                vedtak_id=f"{run_key}-{receiver}",
                kjoring=run_key,
                vedtaksdato=on,
                payer=payer,
                receiver=_receiver(db, receiver),
                account=None,
                kid=None,
                bills=tuple(_bill(db, line, secret) for line in sorted(items, key=_order)),
            )
            for receiver, items in sorted(by_receiver.items())
        ]
    finally:
        db.close()


def _order(line: LineRecord) -> tuple[int, int]:
    return (line.bill_id, line.line_id)


def _receiver(db: sqlite3.Connection, her: str) -> Organisation:
    row = db.execute(
        "SELECT m.sender_name FROM bills b JOIN messages m ON m.id = b.message_id "
        "WHERE b.sender_her = ? ORDER BY b.id DESC LIMIT 1",
        (her,),
    ).fetchone()
    name = str(row[0]) if row and row[0] else f"HER-id {her}"
    return Organisation(name=name, idents=(Ident(her, "HER"),))


def _bill(db: sqlite3.Connection, line: LineRecord, secret: bytes) -> DecisionBill:
    regning_nr, guid, patient_id, dato_tid = db.execute(
        "SELECT regning_nr, guid, patient_id, dato_tid FROM bills WHERE id = ?", (line.bill_id,)
    ).fetchone()
    takster = db.execute(
        "SELECT code, antall, amount_ore FROM bill_lines WHERE bill_id = ? AND kind = 'takst' "
        "ORDER BY position",
        (line.bill_id,),
    ).fetchall()
    notes = db.execute(
        "SELECT code, text FROM findings WHERE bill_id = ? ORDER BY id", (line.bill_id,)
    ).fetchall()
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


def write_decisions(decisions: list[Decision], signer: Signer, directory: Path) -> list[Path]:
    """Write each signed decision atomically as ``<directory>/<vedtak id>.xml``."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for decision in decisions:
        target = directory / f"{decision.vedtak_id}.xml"
        write_atomically(target, signed_decision_bytes(decision, signer))
        written.append(target)
    if written:
        fsync_dir(directory)
    return written
