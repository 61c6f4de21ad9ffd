"""Intake: what one received message produced, written at once, and the lookups that make
receiving idempotent.

``Intake.commit`` writes the received bytes, the message, its bills, lines and findings and the
replies in one transaction (a transactional outbox), so a crash leaves either all of it or none
of it. The lookups find an intake already committed: by spool name (a crash after the commit),
by ebXML CPAId + MessageId and by MsgHead sender + MsgId (a partner sending again).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from gateway.claims.persons import birth_date, is_female
from gateway.records import (
    MessageRecord,
    Outcome,
    PriorMessage,
    ReceivedRecord,
    ReceivedStatus,
    ReplyRecord,
    StoredReply,
    to_ore,
)
from gateway.rules.base import Finding
from gateway.rules.engine import BillDecision, BillStatus, Evaluation
from gateway.store.engine import Engine, Transaction
from gateway.store.history import LIVE_APPROVED
from gateway.store.replies import STORED, write_replies

__all__ = ["Intake"]

_PRIOR = (
    "SELECT r.id, m.content_sha256, m.payload_sha256, r.outcome FROM messages m "
    "JOIN received r ON r.id = m.received_id "
)


class Intake:
    """Writes intakes; finds the ones already written."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- idempotency lookups --------------------------------------------------------------------

    def received_by_ref(self, source_ref: str) -> int | None:
        """The received row of an intake already committed under this spool name, if any."""
        found = self._engine.one("SELECT id FROM received WHERE source_ref = ?", (source_ref,))
        return None if found is None else int(found[0])

    def message_by_ebxml_id(self, cpa_id: str, message_id: str) -> PriorMessage | None:
        """An earlier message with the same ebXML CPAId + MessageId."""
        return self._prior("m.cpa_id = ? AND m.ebxml_message_id = ?", (cpa_id, message_id))

    def message_by_msg_id(self, sender_her: str, msg_id: str) -> PriorMessage | None:
        """An earlier message with the same MsgHead sender HER id + MsgId."""
        return self._prior("m.sender_her = ? AND m.msg_id = ?", (sender_her, msg_id))

    def _prior(self, where: str, params: tuple[str, str]) -> PriorMessage | None:
        found = self._engine.one(_PRIOR + "WHERE " + where, params)
        if found is None:
            return None
        received_id, content, payload, outcome = found
        return PriorMessage(int(received_id), content, payload, Outcome(outcome))

    def status_of(self, cpa_id: str, message_id: str) -> ReceivedStatus | None:
        """The ebXML message ``message_id`` as received, if we have it: the one under ``cpa_id``,
        else under any CPA (the asker is then not its sender). One answered with a MessageError
        was not received, and is not here."""
        found = self._engine.one(
            "SELECT r.id, r.received_at, r.outcome, m.cpa_id, m.from_her FROM messages m "
            "JOIN received r ON r.id = m.received_id WHERE m.ebxml_message_id = ? "
            "ORDER BY CASE WHEN m.cpa_id = ? THEN 0 ELSE 1 END, r.id LIMIT 1",
            (message_id, cpa_id),
        )
        if found is None:
            return None
        received_id, received_at, outcome, found_cpa, from_her = found
        return ReceivedStatus(
            int(received_id),
            datetime.fromisoformat(str(received_at)),
            Outcome(outcome),
            None if found_cpa is None else str(found_cpa),
            None if from_her is None else str(from_her),
        )

    def replies_for(self, received_id: int) -> list[StoredReply]:
        """The replies first sent for a message, in the order they were made."""
        return STORED.fetch(
            self._engine, "FROM replies WHERE received_id = ? ORDER BY id", (received_id,)
        )

    # --- writing --------------------------------------------------------------------------------

    def commit(
        self,
        received: ReceivedRecord,
        message: MessageRecord | None,
        evaluation: Evaluation | None,
        replies: Sequence[ReplyRecord],
        *,
        practitioner_id: str = "",
        practitioner_type: str | None = None,
    ) -> int:
        """Write one intake and all it produced, atomically. Returns the received row id."""
        with self._engine.transaction(f"could not store message {received.source_ref}") as tx:
            received_id = _insert_received(tx, received)
            if message is not None:
                message_id = _insert_message(tx, received_id, message)
                if evaluation is not None:
                    sender = message.sender_her or ""
                    for decision in evaluation.bills:
                        _insert_bill(
                            tx,
                            message_id,
                            sender,
                            practitioner_id or sender,
                            practitioner_type,
                            decision,
                        )
                    for finding in evaluation.message_findings:
                        _insert_finding(tx, message_id, None, finding)
            write_replies(tx, replies, received_id=received_id)
            return received_id


def _insert_received(tx: Transaction, r: ReceivedRecord) -> int:
    return tx.insert(
        "INSERT INTO received(received_at, source, source_ref, sha256, size, raw, outcome, "
        "detail, duplicate_of, signature_references) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING id",
        (
            r.received_at.isoformat(timespec="microseconds"),
            r.source,
            r.source_ref,
            r.sha256,
            len(r.raw) if r.size is None else r.size,
            r.raw,
            r.outcome.value,
            r.detail,
            r.duplicate_of,
            _references(r.signature_references),
        ),
    )


def _references(references: Sequence[bytes]) -> str | None:
    """The ``ds:Reference`` copies as one JSON array of their XML (ASCII: lxml writes other
    characters as references), or NULL when there are none."""
    if not references:
        return None
    return json.dumps([reference.decode("utf-8") for reference in references])


def _insert_message(tx: Transaction, received_id: int, m: MessageRecord) -> int:
    return tx.insert(
        "INSERT INTO messages(received_id, cpa_id, ebxml_message_id, conversation_id, "
        "from_her, to_her, service, action, content_sha256, payload_sha256, msg_id, msg_type, "
        "sender_her, sender_name, gen_date, apprec_status, ruleset_version) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            received_id,
            m.cpa_id,
            m.ebxml_message_id,
            m.conversation_id,
            m.from_her,
            m.to_her,
            m.service,
            m.action,
            m.content_sha256,
            m.payload_sha256,
            m.msg_id,
            m.msg_type,
            m.sender_her,
            m.sender_name,
            m.gen_date.isoformat() if m.gen_date else None,
            m.apprec_status,
            m.ruleset_version,
        ),
    )


def _insert_bill(
    tx: Transaction,
    message_id: int,
    sender_her: str,
    practitioner_id: str,
    practitioner_type: str | None,
    d: BillDecision,
) -> None:
    bill = d.bill
    born = birth_date(bill.patient.id)
    female = is_female(bill.patient.id) if born else None
    bill_id = tx.insert(
        "INSERT INTO bills(message_id, position, sender_her, practitioner_id, guid, "
        "regning_nr, dato_tid, kreditering, betalt_egenandel, kode_egenandel, patient_id, "
        "patient_id_type, sum_refusjon_ore, status, approved_ore, live, manual, "
        "patient_birth_date, patient_sex, practitioner_type) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            message_id,
            d.index,
            sender_her,
            practitioner_id,
            bill.guid,
            bill.regning_nr,
            bill.dato_tid.isoformat(),
            int(bill.kreditering),
            int(bill.betalt_egenandel),
            bill.behandling.kode_egenandel.value if bill.behandling.kode_egenandel else None,
            bill.patient.id,
            bill.patient.type,
            to_ore(bill.behandling.sum_refusjon),
            d.status.value,
            to_ore(d.approved_amount),
            int(d.status is BillStatus.GODKJENT and not bill.kreditering),
            int(d.manual),
            born.isoformat() if born else None,
            None if female is None else ("K" if female else "M"),
            practitioner_type,
        ),
    )
    beh = bill.behandling
    lines: list[tuple[object, ...]] = []
    for t in beh.takster:
        lines.append((bill_id, len(lines), "takst", t.kode, None, to_ore(t.verdi), t.antall))
    for c in beh.diagnoser:
        lines.append((bill_id, len(lines), "diagnose", c.value, c.system, None, None))
    for c in beh.prosedyrekoder:
        lines.append((bill_id, len(lines), "prosedyre", c.value, c.system, None, None))
    for tooth in beh.tenner:
        lines.append((bill_id, len(lines), "tann", tooth, None, None, None))
    tx.execute_many(
        "INSERT INTO bill_lines(bill_id, position, kind, code, code_system, amount_ore, "
        "antall) VALUES (?, ?, ?, ?, ?, ?, ?)",
        lines,
    )
    for finding in d.findings:
        _insert_finding(tx, message_id, bill_id, finding)
    if bill.kreditering and d.status is BillStatus.GODKJENT:
        # The credit consumes the live original: it may then be sent again, corrected.
        tx.execute(
            "UPDATE bills SET credited_by = ?, live = 0 WHERE id = ("
            "SELECT b.id FROM bills b WHERE b.sender_her = ? AND b.guid = ? AND "
            + LIVE_APPROVED
            + ")",
            (bill_id, sender_her, bill.guid),
        )


def _insert_finding(tx: Transaction, message_id: int, bill_id: int | None, f: Finding) -> None:
    tx.execute(
        "INSERT INTO findings(message_id, bill_id, rule_id, rule_version, code, severity, "
        "text, facts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            message_id,
            bill_id,
            f.rule_id,
            f.rule_version,
            f.code,
            f.severity.value,
            f.text,
            json.dumps(dict(f.facts), ensure_ascii=False, sort_keys=True),
        ),
    )
