"""The claims store on SQLite (WAL): every message, bill, line, decision and reply.

One ``commit_intake`` call writes everything one received message produced in a single
transaction, replies included (a transactional outbox), so a crash leaves either all of it or
none of it. ``synchronous=FULL`` because the spool file is moved away only after the commit: the
commit has to survive a power cut, not just a process crash.

The connection is used from one worker thread at a time (guarded by a lock).
"""

from __future__ import annotations

import enum
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path

from gateway.errors import StorageError
from gateway.rules.base import Finding, HistoricBill, StoredBill
from gateway.rules.engine import BillDecision, BillStatus, Evaluation

SCHEMA_VERSION = 1


class Outcome(enum.Enum):
    """What became of a received message."""

    ACCEPTED = "accepted"  # AppRec status 1
    PARTIALLY_ACCEPTED = "partially_accepted"  # AppRec status 3
    REJECTED = "rejected"  # AppRec status 2
    EBXML_ERROR = "ebxml_error"  # answered with an ebXML MessageError
    DUPLICATE = "duplicate"  # answered again with the stored replies
    SIGNAL = "signal"  # an incoming Acknowledgment/MessageError: recorded, not answered
    FAILED = "failed"  # our own error; kept for an operator, not answered


@dataclass(frozen=True, slots=True)
class ReceivedRecord:
    received_at: datetime  # UTC
    source: str
    source_ref: str
    raw: bytes
    sha256: str
    outcome: Outcome
    detail: str | None = None
    duplicate_of: int | None = None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    cpa_id: str | None = None
    ebxml_message_id: str | None = None
    conversation_id: str | None = None
    from_her: str | None = None
    to_her: str | None = None
    service: str | None = None
    action: str | None = None
    content_sha256: str | None = None
    payload_sha256: str | None = None
    msg_id: str | None = None
    msg_type: str | None = None
    sender_her: str | None = None
    sender_name: str | None = None
    gen_date: datetime | None = None
    apprec_status: int | None = None
    ruleset_version: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    kind: str
    recipient: str
    filename: str
    body: bytes
    ebxml_message_id: str | None = None
    ref_to_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class PendingReply:
    id: int
    filename: str
    body: bytes


@dataclass(frozen=True, slots=True)
class PriorMessage:
    """An earlier message with the same idempotency key."""

    received_id: int
    content_sha256: str | None
    payload_sha256: str | None
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class StoredReply:
    kind: str
    recipient: str
    filename: str
    body: bytes
    ebxml_message_id: str | None
    ref_to_message_id: str | None


def to_ore(amount: Decimal) -> int:
    """Kroner to whole øre, exactly (amounts are validated to two decimals)."""
    return int((amount * 100).to_integral_value())


def from_ore(ore: int) -> Decimal:
    return (Decimal(ore) / 100).quantize(Decimal("0.01"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Store:
    """All reads and writes of the claims database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._lock = threading.RLock()
            self._migrate()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- plumbing ------------------------------------------------------------------------------

    def _migrate(self) -> None:
        schema = resources.files("gateway.store").joinpath("schema.sql").read_text("utf-8")
        with self._lock:
            # Every statement is CREATE ... IF NOT EXISTS: safe to run on each start.
            self._db.executescript(schema)
        with self._transaction() as db:
            row = db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                db.execute("INSERT INTO schema_version(version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise StorageError(
                    f"database {self.path} has schema version {row[0]}, "
                    f"this gateway expects {SCHEMA_VERSION}"
                )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                cur = self._db.execute(sql, params)
                cur.row_factory = sqlite3.Row
                return cur.fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"query failed: {exc}") from exc

    # --- idempotency lookups -------------------------------------------------------------------

    def received_by_ref(self, source_ref: str) -> int | None:
        """The received row of an intake already committed under this spool name, if any."""
        rows = self._query("SELECT id FROM received WHERE source_ref = ?", (source_ref,))
        return int(rows[0]["id"]) if rows else None

    _PRIOR = (
        "SELECT r.id, m.content_sha256, m.payload_sha256, r.outcome FROM messages m "
        "JOIN received r ON r.id = m.received_id "
    )

    def message_by_ebxml_id(self, cpa_id: str, message_id: str) -> PriorMessage | None:
        """An earlier message with the same ebXML CPAId + MessageId."""
        return self._prior(
            self._query(
                self._PRIOR + "WHERE m.cpa_id = ? AND m.ebxml_message_id = ?",
                (cpa_id, message_id),
            )
        )

    def message_by_msg_id(self, sender_her: str, msg_id: str) -> PriorMessage | None:
        """An earlier message with the same MsgHead sender HER id + MsgId."""
        return self._prior(
            self._query(
                self._PRIOR + "WHERE m.sender_her = ? AND m.msg_id = ?", (sender_her, msg_id)
            )
        )

    @staticmethod
    def _prior(rows: list[sqlite3.Row]) -> PriorMessage | None:
        if not rows:
            return None
        received_id, content, payload, outcome = rows[0]
        return PriorMessage(int(received_id), content, payload, Outcome(outcome))

    def replies_for(self, received_id: int) -> list[StoredReply]:
        """The replies first sent for a message, in the order they were made."""
        rows = self._query(
            "SELECT kind, recipient, filename, body, ebxml_message_id, ref_to_message_id "
            "FROM replies WHERE received_id = ? ORDER BY id",
            (received_id,),
        )
        return [
            StoredReply(r[0], r[1], r[2], bytes(r[3]), r[4], r[5]) for r in rows
        ]

    # --- ClaimHistory --------------------------------------------------------------------------

    def approved_bill(self, sender_her: str, guid: str) -> StoredBill | None:
        """The approved original bill with this Guid; a live one before a credited one."""
        rows = self._query(
            "SELECT id, regning_nr, sum_refusjon_ore, credited_by FROM bills "
            "WHERE sender_her = ? AND guid = ? AND status = 'godkjent' AND kreditering = 0 "
            "ORDER BY credited_by IS NOT NULL, id DESC LIMIT 1",
            (sender_her, guid),
        )
        if not rows:
            return None
        bill_id, regning_nr, sum_ore, credited_by = rows[0]
        lines = self._query(
            "SELECT code, amount_ore, antall FROM bill_lines "
            "WHERE bill_id = ? AND kind = 'takst' ORDER BY code, amount_ore, antall",
            (bill_id,),
        )
        return StoredBill(
            guid=guid,
            regning_nr=str(regning_nr),
            sum_refusjon=from_ore(int(sum_ore)),
            takster=tuple((str(c), from_ore(int(a)), int(n)) for c, a, n in lines),
            credited=credited_by is not None,
        )

    # --- writes --------------------------------------------------------------------------------

    _HISTORIC = (
        "SELECT b.id, b.guid, b.regning_nr, b.sender_her, b.practitioner_id, b.patient_id, "
        "b.dato_tid FROM bills b WHERE b.status = 'godkjent' AND b.kreditering = 0 "
        "AND b.credited_by IS NULL "
    )

    def practitioner_bills_between(
        self, practitioner_id: str, start: datetime, end: datetime
    ) -> list[HistoricBill]:
        """Approved, uncredited bills of one practitioner starting in ``[start, end)``."""
        return self._historic(
            self._HISTORIC + "AND b.practitioner_id = ? AND b.dato_tid >= ? AND b.dato_tid < ? "
            "ORDER BY b.dato_tid",
            (practitioner_id, start.isoformat(), end.isoformat()),
        )

    def patient_bills_between(
        self, patient_id: str, start: datetime, end: datetime
    ) -> list[HistoricBill]:
        """Approved, uncredited bills of one patient (any practitioner) in ``[start, end)``."""
        return self._historic(
            self._HISTORIC + "AND b.patient_id = ? AND b.dato_tid >= ? AND b.dato_tid < ? "
            "ORDER BY b.dato_tid",
            (patient_id, start.isoformat(), end.isoformat()),
        )

    def patient_code_count(
        self, patient_id: str, codes: frozenset[str], start: datetime, end: datetime
    ) -> int:
        """Sum of ``antall`` of the given takst codes on a patient's live approved bills."""
        if not codes:
            return 0
        marks = ", ".join("?" for _ in codes)
        rows = self._query(
            "SELECT COALESCE(SUM(l.antall), 0) FROM bills b JOIN bill_lines l "
            "ON l.bill_id = b.id AND l.kind = 'takst' "
            "WHERE b.status = 'godkjent' AND b.kreditering = 0 AND b.credited_by IS NULL "
            "AND b.patient_id = ? AND b.dato_tid >= ? AND b.dato_tid < ? "
            f"AND lower(l.code) IN ({marks})",
            (patient_id, start.isoformat(), end.isoformat(), *sorted(codes)),
        )
        return int(rows[0][0])

    def _historic(self, sql: str, params: Sequence[object]) -> list[HistoricBill]:
        rows = self._query(sql, params)
        if not rows:
            return []
        ids = [int(r[0]) for r in rows]
        marks = ", ".join("?" for _ in ids)
        lines: dict[int, list[tuple[str, int]]] = {}
        for bill_id, code, antall in self._query(
            f"SELECT bill_id, code, antall FROM bill_lines WHERE kind = 'takst' "
            f"AND bill_id IN ({marks}) ORDER BY bill_id, position",
            ids,
        ):
            lines.setdefault(int(bill_id), []).append((str(code), int(antall)))
        return [
            HistoricBill(
                guid=str(r[1]),
                regning_nr=str(r[2]),
                sender_her=str(r[3]),
                practitioner_id=str(r[4]),
                patient_id=str(r[5]),
                dato_tid=datetime.fromisoformat(str(r[6])),
                takster=tuple(lines.get(int(r[0]), ())),
            )
            for r in rows
        ]

    # --- tariff data -----------------------------------------------------------------------------

    def record_tariff_import(self, kind: str, source: str, content: bytes, rows: int) -> int:
        """Keep an imported tariff file; it is in force from now (the newest of its kind)."""
        try:
            with self._transaction() as db:
                cur = db.execute(
                    "INSERT INTO tariff_imports(kind, source, sha256, rows, imported_at, content) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, source, hashlib.sha256(content).hexdigest(), rows, _now(), content),
                )
                return int(cur.lastrowid or 0)
        except sqlite3.Error as exc:
            raise StorageError(f"could not store tariff import {source}: {exc}") from exc

    def current_tariff_imports(self) -> dict[str, tuple[int, str, bytes]]:
        """kind -> (import id, sha256, content) of the newest import of each kind."""
        rows = self._query(
            "SELECT t.kind, t.id, t.sha256, t.content FROM tariff_imports t "
            "WHERE t.id = (SELECT MAX(id) FROM tariff_imports WHERE kind = t.kind)"
        )
        return {str(k): (int(i), str(sha), bytes(c)) for k, i, sha, c in rows}

    def tariff_version(self) -> str:
        """Changes whenever any kind of tariff data is imported again (cheap to poll)."""
        rows = self._query("SELECT kind, MAX(id) FROM tariff_imports GROUP BY kind ORDER BY kind")
        return ",".join(f"{kind}:{last}" for kind, last in rows) or "none"

    def commit_intake(
        self,
        received: ReceivedRecord,
        message: MessageRecord | None,
        evaluation: Evaluation | None,
        replies: Sequence[ReplyRecord],
        *,
        practitioner_id: str = "",
    ) -> int:
        """Write one intake and all it produced, atomically. Returns the received row id."""
        try:
            with self._transaction() as db:
                received_id = self._insert_received(db, received)
                if message is not None:
                    message_id = self._insert_message(db, received_id, message)
                    if evaluation is not None:
                        sender = message.sender_her or ""
                        for decision in evaluation.bills:
                            self._insert_bill(
                                db, message_id, sender, practitioner_id or sender, decision
                            )
                        for finding in evaluation.message_findings:
                            self._insert_finding(db, message_id, None, finding)
                now = _now()
                db.executemany(
                    "INSERT INTO replies(received_id, kind, ebxml_message_id, "
                    "ref_to_message_id, recipient, filename, body, created_at, state) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                    [
                        (
                            received_id,
                            r.kind,
                            r.ebxml_message_id,
                            r.ref_to_message_id,
                            r.recipient,
                            r.filename,
                            r.body,
                            now,
                        )
                        for r in replies
                    ],
                )
                return received_id
        except sqlite3.Error as exc:
            raise StorageError(f"could not store message {received.source_ref}: {exc}") from exc

    def _insert_received(self, db: sqlite3.Connection, r: ReceivedRecord) -> int:
        cur = db.execute(
            "INSERT INTO received(received_at, source, source_ref, sha256, size, raw, outcome, "
            "detail, duplicate_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                r.received_at.isoformat(timespec="microseconds"),
                r.source,
                r.source_ref,
                r.sha256,
                len(r.raw),
                r.raw,
                r.outcome.value,
                r.detail,
                r.duplicate_of,
            ),
        )
        return int(cur.lastrowid or 0)

    def _insert_message(self, db: sqlite3.Connection, received_id: int, m: MessageRecord) -> int:
        cur = db.execute(
            "INSERT INTO messages(received_id, cpa_id, ebxml_message_id, conversation_id, "
            "from_her, to_her, service, action, content_sha256, payload_sha256, msg_id, msg_type, "
            "sender_her, sender_name, gen_date, apprec_status, ruleset_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        return int(cur.lastrowid or 0)

    def _insert_bill(
        self,
        db: sqlite3.Connection,
        message_id: int,
        sender_her: str,
        practitioner_id: str,
        d: BillDecision,
    ) -> None:
        bill = d.bill
        cur = db.execute(
            "INSERT INTO bills(message_id, position, sender_her, practitioner_id, guid, "
            "regning_nr, dato_tid, kreditering, betalt_egenandel, kode_egenandel, patient_id, "
            "patient_id_type, sum_refusjon_ore, status, approved_ore) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            ),
        )
        bill_id = int(cur.lastrowid or 0)
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
        db.executemany(
            "INSERT INTO bill_lines(bill_id, position, kind, code, code_system, amount_ore, "
            "antall) VALUES (?, ?, ?, ?, ?, ?, ?)",
            lines,
        )
        for finding in d.findings:
            self._insert_finding(db, message_id, bill_id, finding)
        if bill.kreditering and d.status is BillStatus.GODKJENT:
            # The credit consumes the live original: it may then be sent again, corrected.
            db.execute(
                "UPDATE bills SET credited_by = ? WHERE id = ("
                "SELECT id FROM bills WHERE sender_her = ? AND guid = ? AND status = 'godkjent' "
                "AND kreditering = 0 AND credited_by IS NULL)",
                (bill_id, sender_her, bill.guid),
            )

    def _insert_finding(
        self, db: sqlite3.Connection, message_id: int, bill_id: int | None, f: Finding
    ) -> None:
        db.execute(
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

    # --- outbox --------------------------------------------------------------------------------

    def pending_replies(self, limit: int = 500) -> list[PendingReply]:
        rows = self._query(
            "SELECT id, filename, body FROM replies WHERE state = 'pending' ORDER BY id LIMIT ?",
            (limit,),
        )
        return [PendingReply(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def mark_delivered(self, reply_ids: Sequence[int]) -> None:
        if not reply_ids:
            return
        try:
            with self._transaction() as db:
                db.executemany(
                    "UPDATE replies SET state = 'delivered', delivered_at = ? WHERE id = ?",
                    [(_now(), i) for i in reply_ids],
                )
        except sqlite3.Error as exc:
            raise StorageError(f"could not mark replies delivered: {exc}") from exc

    # --- reading for operators and tests -------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Number of received messages per outcome, and pending replies."""
        result = {
            str(outcome): int(n)
            for outcome, n in self._query(
                "SELECT outcome, COUNT(*) FROM received GROUP BY outcome"
            )
        }
        result["pending_replies"] = int(
            self._query("SELECT COUNT(*) FROM replies WHERE state = 'pending'")[0][0]
        )
        return result
