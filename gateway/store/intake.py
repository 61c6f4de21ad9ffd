"""Intake: what received messages produced, written at once, and the lookups that make
receiving idempotent.

What one message's transaction writes is first made into plain rows (``intake_rows``: the
received bytes, the message, its bills with their lines and findings, the replies), anywhere:
a worker process builds them, and they cost little to hand over. ``write_intake`` writes them
inside a transaction; ``Intake.commit`` does that for one message, in a transaction of its own,
and a batch writer (``gateway.intake.writer``) writes many messages in one transaction, each in
a savepoint of its own. Either way a crash leaves all of a message or none of it.

The lookups find an intake already committed: by spool name (a crash after the commit), by
ebXML CPAId + MessageId and by MsgHead sender + MsgId (a partner sending again).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

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

__all__ = [
    "BillRows",
    "Intake",
    "IntakeRows",
    "Touched",
    "Written",
    "intake_rows",
    "savepoint",
    "write_intake",
]

#: One row's values, in the order of its INSERT's columns (ids of parent rows left out).
Values = tuple[object, ...]

# The rows of an intake are named tuples, not dataclasses: a worker process sends them to the
# writer, and a named tuple unpickles several times faster than a slotted dataclass.


class Touched(NamedTuple):
    """A bill as the history queries see it: what a later message's rules may read."""

    sender_her: str
    guid: str
    practitioner_id: str
    patient_id: str
    dato_tid: datetime


class BillRows(NamedTuple):
    """One bill: its row, its lines and findings, and what it changes in the history."""

    bill: Values  # ``bills`` from ``position`` on (``message_id`` is set when written)
    lines: tuple[Values, ...]  # ``bill_lines`` from ``position`` on
    findings: tuple[Values, ...]  # ``findings`` from ``rule_id`` on
    touched: Touched
    approved: bool  # godkjent: the history sees it (an original), or the original it credits
    credit: bool  # a kreditering: when approved, it consumes the live original


class IntakeRows(NamedTuple):
    """Everything one received message writes, as plain values (cheap to hand between
    processes): see ``intake_rows``."""

    source_ref: str
    received: Values  # ``received`` from ``received_at`` on
    message: Values | None  # ``messages`` from ``cpa_id`` on
    bills: tuple[BillRows, ...]
    message_findings: tuple[Values, ...]
    replies: tuple[ReplyRecord, ...]
    ebxml_id: tuple[str, str] | None  # (CPAId, MessageId), unique once stored
    msghead_id: tuple[str, str] | None  # (sender HER id, MsgId), unique once stored


@dataclass(frozen=True, slots=True)
class Written:
    """What writing one intake did."""

    received_id: int
    reply_ids: tuple[int, ...]
    #: The live originals that approved credits of this intake consumed.
    credited: tuple[Touched, ...]


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

    def stored_already(self, tx: Transaction, rows: IntakeRows) -> tuple[bool, bool]:
        """In ``tx`` (so what was written earlier in it counts): whether the ``source_ref`` of
        ``rows`` is committed, and whether a message with its ebXML or MsgHead ids is. One
        query."""
        cpa_id, message_id = rows.ebxml_id or (None, None)
        sender, msg_id = rows.msghead_id or (None, None)
        found = tx.one(
            "SELECT EXISTS (SELECT 1 FROM received WHERE source_ref = ?), "
            "EXISTS (SELECT 1 FROM messages WHERE cpa_id = ? AND ebxml_message_id = ?), "
            "EXISTS (SELECT 1 FROM messages WHERE sender_her = ? AND msg_id = ?)",
            (rows.source_ref, cpa_id, message_id, sender, msg_id),
        )
        assert found is not None  # a SELECT without FROM returns one row
        return bool(found[0]), bool(found[1]) or bool(found[2])

    # --- writing --------------------------------------------------------------------------------

    def transaction(self, failure: str) -> AbstractContextManager[Transaction]:
        """One write transaction for a batch of intakes (see ``write_intake``)."""
        return self._engine.transaction(failure)

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
        rows = intake_rows(
            received,
            message,
            evaluation,
            replies,
            practitioner_id=practitioner_id,
            practitioner_type=practitioner_type,
        )
        return self.commit_rows(rows)

    def commit_rows(self, rows: IntakeRows) -> int:
        """Write one intake's rows, atomically. Returns the received row id."""
        with self._engine.transaction(f"could not store message {rows.source_ref}") as tx:
            return write_intake(tx, rows).received_id


@contextmanager
def savepoint(tx: Transaction, name: str) -> Iterator[None]:
    """A savepoint in ``tx``: released when the block ends, rolled back to (and the error
    re-raised) when it raises; the transaction itself stays open either way."""
    tx.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        tx.execute(f"ROLLBACK TO SAVEPOINT {name}")
        tx.execute(f"RELEASE SAVEPOINT {name}")
        raise
    tx.execute(f"RELEASE SAVEPOINT {name}")


def intake_rows(
    received: ReceivedRecord,
    message: MessageRecord | None,
    evaluation: Evaluation | None,
    replies: Sequence[ReplyRecord],
    *,
    practitioner_id: str = "",
    practitioner_type: str | None = None,
) -> IntakeRows:
    """The rows one intake writes, as plain values."""
    bills: tuple[BillRows, ...] = ()
    findings: tuple[Values, ...] = ()
    ebxml_id = msghead_id = None
    if message is not None:
        if message.cpa_id is not None and message.ebxml_message_id is not None:
            ebxml_id = (message.cpa_id, message.ebxml_message_id)
        if message.sender_her is not None and message.msg_id is not None:
            msghead_id = (message.sender_her, message.msg_id)
        if evaluation is not None:
            sender = message.sender_her or ""
            bills = tuple(
                _bill_rows(sender, practitioner_id or sender, practitioner_type, decision)
                for decision in evaluation.bills
            )
            findings = tuple(_finding_values(f) for f in evaluation.message_findings)
    return IntakeRows(
        source_ref=received.source_ref,
        received=_received_values(received),
        message=None if message is None else _message_values(message),
        bills=bills,
        message_findings=findings,
        replies=tuple(replies),
        ebxml_id=ebxml_id,
        msghead_id=msghead_id,
    )


def write_intake(tx: Transaction, rows: IntakeRows) -> Written:
    """Write one intake's rows in the open transaction ``tx``."""
    received_id = tx.insert(
        "INSERT INTO received(received_at, source, source_ref, sha256, size, raw, outcome, "
        "detail, duplicate_of, signature_references) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING id",
        rows.received,
    )
    credited: list[Touched] = []
    if rows.message is not None:
        message_id = tx.insert(
            "INSERT INTO messages(received_id, cpa_id, ebxml_message_id, conversation_id, "
            "from_her, to_her, service, action, content_sha256, payload_sha256, msg_id, "
            "msg_type, sender_her, sender_name, gen_date, apprec_status, ruleset_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (received_id, *rows.message),
        )
        lines: list[Values] = []
        findings: list[Values] = []
        for bill in rows.bills:
            bill_id, original = _write_bill(tx, message_id, bill)
            lines += [(bill_id, *line) for line in bill.lines]
            findings += [(message_id, bill_id, *f) for f in bill.findings]
            if original is not None:
                credited.append(original)
        findings += [(message_id, None, *f) for f in rows.message_findings]
        # All lines and findings of the message at once: one statement each.
        tx.execute_many(
            "INSERT INTO bill_lines(bill_id, position, kind, code, code_system, amount_ore, "
            "antall) VALUES (?, ?, ?, ?, ?, ?, ?)",
            lines,
        )
        tx.execute_many(_FINDING, findings)
    reply_ids = write_replies(tx, rows.replies, received_id=received_id)
    return Written(received_id, tuple(reply_ids), tuple(credited))


_FINDING = (
    "INSERT INTO findings(message_id, bill_id, rule_id, rule_version, code, severity, text, "
    "facts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _references(references: Sequence[bytes]) -> str | None:
    """The ``ds:Reference`` copies as one JSON array of their XML (ASCII: lxml writes other
    characters as references), or NULL when there are none."""
    if not references:
        return None
    return json.dumps([reference.decode("utf-8") for reference in references])


def _write_bill(tx: Transaction, message_id: int, rows: BillRows) -> tuple[int, Touched | None]:
    """Write one bill's row; its id, and the live original it consumed if it is an approved
    credit (at once: a new original with the same Guid later in the message must find it
    consumed)."""
    bill_id = tx.insert(
        "INSERT INTO bills(message_id, position, sender_her, practitioner_id, guid, "
        "regning_nr, dato_tid, kreditering, betalt_egenandel, kode_egenandel, patient_id, "
        "patient_id_type, sum_refusjon_ore, status, approved_ore, live, manual, "
        "patient_birth_date, patient_sex, practitioner_type) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (message_id, *rows.bill),
    )
    if not (rows.credit and rows.approved):
        return bill_id, None
    # The credit consumes the live original: it may then be sent again, corrected.
    touched = rows.touched
    found = tx.rows(
        "UPDATE bills SET credited_by = ?, live = 0 WHERE id = ("
        "SELECT b.id FROM bills b WHERE b.sender_her = ? AND b.guid = ? AND "
        + LIVE_APPROVED
        + ") RETURNING practitioner_id, patient_id, dato_tid",
        (bill_id, touched.sender_her, touched.guid),
    )
    if not found:
        return bill_id, None
    practitioner, patient, dato_tid = found[0]
    return bill_id, Touched(
        touched.sender_her,
        touched.guid,
        str(practitioner),
        str(patient),
        datetime.fromisoformat(str(dato_tid)),
    )


def _received_values(r: ReceivedRecord) -> Values:
    return (
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
    )


def _message_values(m: MessageRecord) -> Values:
    return (
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
    )


def _bill_rows(
    sender_her: str, practitioner_id: str, practitioner_type: str | None, d: BillDecision
) -> BillRows:
    bill = d.bill
    born = birth_date(bill.patient.id)
    female = is_female(bill.patient.id) if born else None
    approved = d.status is BillStatus.GODKJENT
    values = (
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
        int(approved and not bill.kreditering),
        int(d.manual),
        born.isoformat() if born else None,
        None if female is None else ("K" if female else "M"),
        practitioner_type,
    )
    beh = bill.behandling
    lines: list[Values] = []
    for t in beh.takster:
        lines.append((len(lines), "takst", t.kode, None, to_ore(t.verdi), t.antall))
    for c in beh.diagnoser:
        lines.append((len(lines), "diagnose", c.value, c.system, None, None))
    for c in beh.prosedyrekoder:
        lines.append((len(lines), "prosedyre", c.value, c.system, None, None))
    for tooth in beh.tenner:
        lines.append((len(lines), "tann", tooth, None, None, None))
    return BillRows(
        bill=values,
        lines=tuple(lines),
        findings=tuple(_finding_values(f) for f in d.findings),
        touched=Touched(sender_her, bill.guid, practitioner_id, bill.patient.id, bill.dato_tid),
        approved=approved,
        credit=bill.kreditering,
    )


def _finding_values(f: Finding) -> Values:
    return (
        f.rule_id,
        f.rule_version,
        f.code,
        f.severity.value,
        f.text,
        json.dumps(dict(f.facts), ensure_ascii=False, sort_keys=True),
    )
