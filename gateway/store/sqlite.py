"""The claims store on SQLite (WAL): every message, bill, line, decision and reply.

One ``commit_intake`` call writes everything one received message produced in a single
transaction, replies included (a transactional outbox), so a crash leaves either all of it or
none of it. ``synchronous=FULL`` because the spool file is moved away only after the commit: the
commit has to survive a power cut, not just a process crash.

The connection is used from one worker thread at a time (guarded by a lock).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Literal

from gateway.claims.persons import birth_date, is_female
from gateway.errors import StorageError
from gateway.records import (
    CaseBill,
    CaseLine,
    EffectiveStatus,
    MessageRecord,
    OutboxSummary,
    Outcome,
    OverrideRecord,
    PendingReply,
    PriorMessage,
    ReceivedRecord,
    ReceivedSummary,
    ReplyRecord,
    ReplySummary,
    SignalMatch,
    StoredFinding,
    StoredReply,
    from_ore,
    to_ore,
)
from gateway.rules.base import Finding, HistoricBill, StoredBill
from gateway.rules.engine import BillDecision, BillStatus, Evaluation
from gateway.store.migrations import SCHEMA_VERSION, migrate

#: A bill counts as approved by its latest override (``overrides``), else by the engine's
#: decision: what history rules and the payout must see. Alias ``b`` for ``bills``.
EFFECTIVELY_APPROVED = (
    "COALESCE((SELECT o.decision FROM overrides o WHERE o.bill_id = b.id "
    "ORDER BY o.id DESC LIMIT 1), b.status) = 'godkjent'"
)

#: What the history queries see: live (uncredited) approved originals. Alias ``b``.
LIVE_APPROVED = "b.kreditering = 0 AND b.credited_by IS NULL AND " + EFFECTIVELY_APPROVED


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _iso(moment: datetime | None) -> str:
    """A moment (default now) as the stored UTC text; one format, so text order is time order."""
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")


def _time(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _pending(r: sqlite3.Row) -> PendingReply:
    return PendingReply(
        id=int(r[0]),
        filename=str(r[1]),
        body=bytes(r[2]),
        recipient=str(r[3]),
        kind=str(r[4]),
        ebxml_message_id=_opt_str(r[5]),
        attempts=int(r[6]),
    )


def _summary(r: sqlite3.Row) -> ReplySummary:
    return ReplySummary(
        id=int(r[0]),
        received_id=_opt_int(r[1]),
        kind=str(r[2]),
        ebxml_message_id=_opt_str(r[3]),
        ref_to_message_id=_opt_str(r[4]),
        recipient=str(r[5]),
        filename=str(r[6]),
        created_at=datetime.fromisoformat(str(r[7])),
        state=str(r[8]),
        delivered_at=_time(r[9]),
        attempts=int(r[10]),
        next_attempt_at=_time(r[11]),
        last_error=_opt_str(r[12]),
        sends=int(r[13]),
        ack_state=_opt_str(r[14]),
        ack_received_id=_opt_int(r[15]),
        ack_at=_time(r[16]),
        expires_at=_time(r[17]),
        size=int(r[18]),
    )


def _received(r: sqlite3.Row) -> ReceivedSummary:
    return ReceivedSummary(
        id=int(r[0]),
        received_at=datetime.fromisoformat(str(r[1])),
        source=str(r[2]),
        source_ref=str(r[3]),
        sha256=str(r[4]),
        size=int(r[5]),
        outcome=str(r[6]),
        detail=_opt_str(r[7]),
        duplicate_of=_opt_int(r[8]),
        ebxml_message_id=_opt_str(r[9]),
        conversation_id=_opt_str(r[10]),
        cpa_id=_opt_str(r[11]),
        from_her=_opt_str(r[12]),
        to_her=_opt_str(r[13]),
        service=_opt_str(r[14]),
        action=_opt_str(r[15]),
        msg_id=_opt_str(r[16]),
        msg_type=_opt_str(r[17]),
        sender_her=_opt_str(r[18]),
        sender_name=_opt_str(r[19]),
        apprec_status=_opt_int(r[20]),
        bills=int(r[21]),
    )


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
            version = self._existing_version()
            if version is not None and version > SCHEMA_VERSION:
                raise StorageError(
                    f"database {self.path} has schema version {version}, newer than this "
                    f"gateway's {SCHEMA_VERSION}: upgrade gateway"
                )
            if version is not None and version < SCHEMA_VERSION:
                migrate(self._db, version)
            # Every statement is CREATE ... IF NOT EXISTS: safe to run on each start.
            self._db.executescript(schema)
        with self._transaction() as db:
            row = db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                db.execute("INSERT INTO schema_version(version) VALUES (?)", (SCHEMA_VERSION,))

    def _existing_version(self) -> int | None:
        has_table = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if has_table is None:
            return None
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        return None if row is None else int(row[0])

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
        return self._approved_bill(sender_her, guid, None)

    def practitioner_bills_between(
        self, practitioner_id: str, start: datetime, end: datetime
    ) -> list[HistoricBill]:
        """Approved, uncredited bills of one practitioner starting in ``[start, end)``."""
        return self._bills_between("practitioner_id", practitioner_id, start, end)

    def patient_bills_between(
        self, patient_id: str, start: datetime, end: datetime
    ) -> list[HistoricBill]:
        """Approved, uncredited bills of one patient (any practitioner) in ``[start, end)``."""
        return self._bills_between("patient_id", patient_id, start, end)

    def patient_code_count(
        self, patient_id: str, codes: frozenset[str], start: datetime, end: datetime
    ) -> int:
        """Sum of ``antall`` of the given takst codes on a patient's live approved bills."""
        return self._code_count(patient_id, codes, start, end, None)

    def _approved_bill(
        self, sender_her: str, guid: str, before_message_id: int | None
    ) -> StoredBill | None:
        """``approved_bill``, or with ``before_message_id`` as of that message's arrival: only
        bills of earlier messages, and a credit counts only if it came in an earlier message."""
        if before_message_id is None:
            credited, join, earlier = "b.credited_by IS NOT NULL", "", ""
            params: tuple[object, ...] = (sender_her, guid)
        else:
            credited = "c.id IS NOT NULL"
            join = "LEFT JOIN bills c ON c.id = b.credited_by AND c.message_id < ? "
            earlier = "AND b.message_id < ? "
            params = (before_message_id, sender_her, guid, before_message_id)
        rows = self._query(
            f"SELECT b.id, b.regning_nr, b.sum_refusjon_ore, ({credited}) AS credited "
            f"FROM bills b {join}"
            f"WHERE b.sender_her = ? AND b.guid = ? AND b.kreditering = 0 {earlier}"
            "AND " + EFFECTIVELY_APPROVED + " ORDER BY credited, b.id DESC LIMIT 1",
            params,
        )
        if not rows:
            return None
        bill_id, regning_nr, sum_ore, is_credited = rows[0]
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
            credited=bool(is_credited),
        )

    def _code_count(
        self,
        patient_id: str,
        codes: frozenset[str],
        start: datetime,
        end: datetime,
        from_message_id: int | None,
    ) -> int:
        """``patient_code_count``, or with ``from_message_id`` only the part of it that comes
        from that message and later ones."""
        if not codes:
            return 0
        marks = ", ".join("?" for _ in codes)
        sql = (
            "SELECT COALESCE(SUM(l.antall), 0) FROM bills b JOIN bill_lines l "
            "ON l.bill_id = b.id AND l.kind = 'takst' WHERE " + LIVE_APPROVED + " "
            "AND b.patient_id = ? AND b.dato_tid >= ? AND b.dato_tid < ? "
            f"AND lower(l.code) IN ({marks})"
        )
        params: list[object] = [patient_id, start.isoformat(), end.isoformat(), *sorted(codes)]
        if from_message_id is not None:
            sql += " AND b.message_id >= ?"
            params.append(from_message_id)
        return int(self._query(sql, params)[0][0])

    def _bills_between(
        self,
        column: Literal["practitioner_id", "patient_id"],
        value: str,
        start: datetime,
        end: datetime,
    ) -> list[HistoricBill]:
        """The history bills whose ``column`` is ``value``, in ``[start, end)`` by DatoTid, with
        their takst lines."""
        rows = self._query(
            "SELECT b.id, b.guid, b.regning_nr, b.sender_her, b.practitioner_id, b.patient_id, "
            "b.dato_tid FROM bills b WHERE " + LIVE_APPROVED + " "
            f"AND b.{column} = ? AND b.dato_tid >= ? AND b.dato_tid < ? ORDER BY b.dato_tid",
            (value, start.isoformat(), end.isoformat()),
        )
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

    # --- writes --------------------------------------------------------------------------------

    def commit_intake(
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
        try:
            with self._transaction() as db:
                received_id = self._insert_received(db, received)
                if message is not None:
                    message_id = self._insert_message(db, received_id, message)
                    if evaluation is not None:
                        sender = message.sender_her or ""
                        for decision in evaluation.bills:
                            self._insert_bill(
                                db,
                                message_id,
                                sender,
                                practitioner_id or sender,
                                practitioner_type,
                                decision,
                            )
                        for finding in evaluation.message_findings:
                            self._insert_finding(db, message_id, None, finding)
                now = _now()
                db.executemany(
                    "INSERT INTO replies(received_id, kind, ebxml_message_id, "
                    "ref_to_message_id, recipient, filename, body, created_at, state, "
                    "ack_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
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
                            "awaiting" if r.awaits_ack else None,
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
        practitioner_type: str | None,
        d: BillDecision,
    ) -> None:
        bill = d.bill
        born = birth_date(bill.patient.id)
        female = is_female(bill.patient.id) if born else None
        cur = db.execute(
            "INSERT INTO bills(message_id, position, sender_her, practitioner_id, guid, "
            "regning_nr, dato_tid, kreditering, betalt_egenandel, kode_egenandel, patient_id, "
            "patient_id_type, sum_refusjon_ore, status, approved_ore, live, manual, "
            "patient_birth_date, patient_sex, practitioner_type) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                "UPDATE bills SET credited_by = ?, live = 0 WHERE id = ("
                "SELECT b.id FROM bills b WHERE b.sender_her = ? AND b.guid = ? AND "
                + LIVE_APPROVED
                + ")",
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
    # The transactional outbox (``replies``): rows are written with the decision that caused
    # them; the outbox in use (gateway.outbox.files / .smtp) delivers due rows; the reliability
    # task (gateway.outbox.reliability) resends AckRequested messages until the partner's
    # signal arrives (gateway.outbox.signals). For a *pending* row ``next_attempt_at`` is when
    # to try delivery again; for a *delivered* row awaiting an ack it is when to resend.

    _PENDING = (
        "SELECT id, filename, body, recipient, kind, ebxml_message_id, attempts FROM replies "
    )

    def queue_replies(
        self,
        replies: Sequence[ReplyRecord],
        *,
        received_id: int | None = None,
        now: datetime | None = None,
    ) -> list[int]:
        """Queue replies that no intake produced (payout decisions: ``received_id`` None), in
        one transaction; return their row ids."""
        created = _iso(now)
        ids: list[int] = []
        try:
            with self._transaction() as db:
                for r in replies:
                    cur = db.execute(
                        "INSERT INTO replies(received_id, kind, ebxml_message_id, "
                        "ref_to_message_id, recipient, filename, body, created_at, state, "
                        "ack_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                        (
                            received_id,
                            r.kind,
                            r.ebxml_message_id,
                            r.ref_to_message_id,
                            r.recipient,
                            r.filename,
                            r.body,
                            created,
                            "awaiting" if r.awaits_ack else None,
                        ),
                    )
                    ids.append(int(cur.lastrowid or 0))
        except sqlite3.Error as exc:
            raise StorageError(f"could not queue replies: {exc}") from exc
        return ids

    def pending_replies(
        self, limit: int = 500, *, now: datetime | None = None
    ) -> list[PendingReply]:
        """Rows due for delivery: pending, and never tried or their retry time has come."""
        rows = self._query(
            self._PENDING + "WHERE state = 'pending' AND "
            "(next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id LIMIT ?",
            (_iso(now), limit),
        )
        return [_pending(r) for r in rows]

    def next_attempt_due(self) -> datetime | None:
        """The earliest retry time of a pending row waiting for one (None: none waits)."""
        rows = self._query(
            "SELECT MIN(next_attempt_at) FROM replies WHERE state = 'pending' "
            "AND next_attempt_at IS NOT NULL"
        )
        value = rows[0][0]
        return None if value is None else datetime.fromisoformat(str(value))

    def record_delivery(self, reply_ids: Sequence[int], *, now: datetime | None = None) -> None:
        """Mark rows delivered (one more send; failed attempts reset). Only pending rows
        change, so a row requeued or discarded meanwhile is not touched."""
        if not reply_ids:
            return
        at = _iso(now)
        try:
            with self._transaction() as db:
                db.executemany(
                    "UPDATE replies SET state = 'delivered', delivered_at = ?, "
                    "sends = sends + 1, attempts = 0, next_attempt_at = NULL "
                    "WHERE id = ? AND state = 'pending'",
                    [(at, i) for i in reply_ids],
                )
        except sqlite3.Error as exc:
            raise StorageError(f"could not mark replies delivered: {exc}") from exc

    def mark_delivered(self, reply_ids: Sequence[int]) -> None:
        """``record_delivery`` now (the file outbox's name for it)."""
        self.record_delivery(reply_ids)

    def record_failure(
        self, reply_id: int, error: str, retry_at: datetime, *, now: datetime | None = None
    ) -> int:
        """A transient delivery failure: count it, keep the error, try again at ``retry_at``.
        Returns the attempts so far."""
        del now  # the row keeps only the retry time; accepted for a uniform signature
        try:
            with self._transaction() as db:
                db.execute(
                    "UPDATE replies SET attempts = attempts + 1, last_error = ?, "
                    "next_attempt_at = ? WHERE id = ? AND state = 'pending'",
                    (error[:2000], _iso(retry_at), reply_id),
                )
                row = db.execute(
                    "SELECT attempts FROM replies WHERE id = ?", (reply_id,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"could not record failure of reply {reply_id}: {exc}") from exc
        return 0 if row is None else int(row[0])

    def mark_dead(self, reply_id: int, error: str, *, now: datetime | None = None) -> None:
        """A permanent failure (SMTP 5xx, no address): a dead letter for an operator."""
        del now
        try:
            with self._transaction() as db:
                db.execute(
                    "UPDATE replies SET state = 'dead', attempts = attempts + 1, "
                    "last_error = ?, next_attempt_at = NULL WHERE id = ? AND state = 'pending'",
                    (error[:2000], reply_id),
                )
        except sqlite3.Error as exc:
            raise StorageError(f"could not mark reply {reply_id} dead: {exc}") from exc

    def requeue(
        self, reply_ids: Sequence[int], *, by: str = "operator", now: datetime | None = None
    ) -> list[int]:
        """Dead letters back to pending, to be sent as soon as possible; the requeue is noted
        in ``last_error``. Returns the ids that were dead (others are left alone)."""
        note = f"requeued by {by} at {_iso(now)}"
        return self._from_dead(
            reply_ids,
            "state = 'pending', attempts = 0, next_attempt_at = NULL, "
            "last_error = substr(? || COALESCE('; before: ' || last_error, ''), 1, 2000)",
            note,
        )

    def discard(
        self,
        reply_ids: Sequence[int],
        reason: str,
        *,
        by: str = "operator",
        now: datetime | None = None,
    ) -> list[int]:
        """Give up on dead letters for good (``reason`` is kept in ``last_error``); a row is
        never deleted. Returns the ids that were dead."""
        note = f"discarded by {by} at {_iso(now)}: {reason}"
        return self._from_dead(
            reply_ids,
            "state = 'discarded', next_attempt_at = NULL, "
            "last_error = substr(? || COALESCE('; before: ' || last_error, ''), 1, 2000)",
            note,
        )

    def _from_dead(self, reply_ids: Sequence[int], assignments: str, note: str) -> list[int]:
        changed: list[int] = []
        try:
            with self._transaction() as db:
                for reply_id in reply_ids:
                    cur = db.execute(
                        f"UPDATE replies SET {assignments} WHERE id = ? AND state = 'dead'",
                        (note, reply_id),
                    )
                    if cur.rowcount:
                        changed.append(reply_id)
        except sqlite3.Error as exc:
            raise StorageError(f"could not change dead letters: {exc}") from exc
        return changed

    def dead_letters(self) -> list[ReplySummary]:
        """Every dead reply, oldest first."""
        return self.list_replies(state="dead", limit=None)

    def list_replies(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        ack_state: str | None = None,
        limit: int | None = 200,
    ) -> list[ReplySummary]:
        """Replies (no bodies), oldest first, filtered by state, kind and ack state."""
        where: list[str] = []
        params: list[object] = []
        for column, value in (("state", state), ("kind", kind), ("ack_state", ack_state)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = self._SUMMARY + (f"WHERE {' AND '.join(where)} " if where else "") + "ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_summary(r) for r in self._query(sql, params)]

    _SUMMARY = (
        "SELECT id, received_id, kind, ebxml_message_id, ref_to_message_id, recipient, "
        "filename, created_at, state, delivered_at, attempts, next_attempt_at, last_error, "
        "sends, ack_state, ack_received_id, ack_at, expires_at, length(body) FROM replies "
    )

    def reply(self, reply_id: int) -> ReplySummary | None:
        """One reply's row without its body."""
        rows = self._query(self._SUMMARY + "WHERE id = ?", (reply_id,))
        return _summary(rows[0]) if rows else None

    def reply_body(self, reply_id: int) -> bytes:
        """The exact bytes of a reply, as sent (and resent)."""
        rows = self._query("SELECT body FROM replies WHERE id = ?", (reply_id,))
        if not rows:
            raise StorageError(f"no reply {reply_id}")
        return bytes(rows[0][0])

    # --- acknowledgment tracking (ebXML AckRequested) ------------------------------------------

    def awaiting_acks(self) -> list[ReplySummary]:
        """Replies sent (or to be sent) with AckRequested whose signal has not come, oldest
        first; discarded ones are not waited for."""
        return [
            r
            for r in self.list_replies(ack_state="awaiting", limit=None)
            if r.state != "discarded"
        ]

    def unplanned_acks(self) -> list[ReplySummary]:
        """Delivered replies awaiting an ack with no resend time yet (just sent or resent)."""
        rows = self._query(
            self._SUMMARY + "WHERE ack_state = 'awaiting' AND state = 'delivered' "
            "AND next_attempt_at IS NULL ORDER BY id"
        )
        return [_summary(r) for r in rows]

    def plan_resend(self, reply_id: int, resend_at: datetime, expires_at: datetime) -> None:
        """When to resend a delivered reply if no ack has come, and when to stop waiting."""
        try:
            with self._transaction() as db:
                db.execute(
                    "UPDATE replies SET next_attempt_at = ?, expires_at = ? "
                    "WHERE id = ? AND state = 'delivered' AND ack_state = 'awaiting'",
                    (_iso(resend_at), _iso(expires_at), reply_id),
                )
        except sqlite3.Error as exc:
            raise StorageError(f"could not plan resend of reply {reply_id}: {exc}") from exc

    def due_for_resend(self, now: datetime | None = None) -> list[ReplySummary]:
        """Delivered replies still awaiting an ack whose resend time has come, before expiry."""
        at = _iso(now)
        rows = self._query(
            self._SUMMARY + "WHERE ack_state = 'awaiting' AND state = 'delivered' "
            "AND next_attempt_at IS NOT NULL AND next_attempt_at <= ? "
            "AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
            (at, at),
        )
        return [_summary(r) for r in rows]

    def schedule_resend(self, reply_ids: Sequence[int]) -> list[int]:
        """Put delivered, unacknowledged replies back to pending: the same bytes (same ebXML
        MessageId) are sent again. Returns the ids that changed."""
        changed: list[int] = []
        try:
            with self._transaction() as db:
                for reply_id in reply_ids:
                    cur = db.execute(
                        "UPDATE replies SET state = 'pending', next_attempt_at = NULL, "
                        "attempts = 0 WHERE id = ? AND state = 'delivered' "
                        "AND ack_state = 'awaiting'",
                        (reply_id,),
                    )
                    if cur.rowcount:
                        changed.append(reply_id)
        except sqlite3.Error as exc:
            raise StorageError(f"could not schedule resends: {exc}") from exc
        return changed

    def expire(self, now: datetime | None = None) -> list[ReplySummary]:
        """Stop waiting for the acks whose time is up (``expires_at`` passed): their
        ``ack_state`` becomes 'expired'. Returns those rows, for the operator's log."""
        at = _iso(now)
        try:
            with self._transaction() as db:
                cur = db.execute(
                    self._SUMMARY + "WHERE ack_state = 'awaiting' AND expires_at IS NOT NULL "
                    "AND expires_at <= ? ORDER BY id",
                    (at,),
                )
                cur.row_factory = sqlite3.Row
                rows = cur.fetchall()
                # A resend still queued is pointless now: it counts as delivered, not sent.
                db.executemany(
                    "UPDATE replies SET ack_state = 'expired', next_attempt_at = NULL, "
                    "state = CASE WHEN state = 'pending' AND sends > 0 THEN 'delivered' "
                    "ELSE state END WHERE id = ?",
                    [(int(r[0]),) for r in rows],
                )
        except sqlite3.Error as exc:
            raise StorageError(f"could not expire acknowledgments: {exc}") from exc
        return [_summary(r) for r in rows]

    def record_signal(
        self,
        ref_to_message_id: str,
        kind: Literal["acknowledgment", "message_error"],
        received_id: int | None,
        *,
        now: datetime | None = None,
    ) -> list[SignalMatch]:
        """Record a partner's Acknowledgment or MessageError for our message
        ``ref_to_message_id``. The first signal settles a reply (a later one changes nothing);
        a late ack still settles an expired one. A reply waiting for a resend is delivered
        already, so it is not sent again. Returns what matched (empty: not one of ours)."""
        new_state = "acknowledged" if kind == "acknowledgment" else "error"
        matches: list[SignalMatch] = []
        try:
            with self._transaction() as db:
                rows = db.execute(
                    "SELECT id, kind, ack_state FROM replies "
                    "WHERE ebxml_message_id = ? ORDER BY id",
                    (ref_to_message_id,),
                ).fetchall()
                for reply_id, reply_kind, ack_state in rows:
                    settles = ack_state in (None, "awaiting", "expired")
                    if settles:
                        db.execute(
                            # (Every expression sees the row as it was before the update.)
                            "UPDATE replies SET ack_state = ?, ack_received_id = ?, ack_at = ?, "
                            "next_attempt_at = CASE WHEN state = 'delivered' OR "
                            "(state = 'pending' AND sends > 0) THEN NULL "
                            "ELSE next_attempt_at END, "
                            "state = CASE WHEN state = 'pending' AND sends > 0 "
                            "THEN 'delivered' ELSE state END WHERE id = ?",
                            (new_state, received_id, _iso(now), reply_id),
                        )
                    matches.append(
                        SignalMatch(
                            reply_id=int(reply_id),
                            reply_kind=str(reply_kind),
                            previous_ack_state=None if ack_state is None else str(ack_state),
                            ack_state=new_state if settles else str(ack_state),
                            changed=settles,
                        )
                    )
        except sqlite3.Error as exc:
            raise StorageError(f"could not record signal for {ref_to_message_id}: {exc}") from exc
        return matches

    def outbox_summary(self, now: datetime | None = None) -> OutboxSummary:
        """Counts per state and ack state and the oldest pending age, for metrics and health."""
        states = {str(s): int(n) for s, n in self._query(
            "SELECT state, COUNT(*) FROM replies GROUP BY state"
        )}
        acks = {str(s): int(n) for s, n in self._query(
            "SELECT ack_state, COUNT(*) FROM replies WHERE ack_state IS NOT NULL "
            "AND state != 'discarded' GROUP BY ack_state"
        )}
        oldest = self._query("SELECT MIN(created_at) FROM replies WHERE state = 'pending'")[0][0]
        age = 0.0
        if oldest is not None:
            moment = now or datetime.now(UTC)
            age = max(0.0, (moment - datetime.fromisoformat(str(oldest))).total_seconds())
        return OutboxSummary(states=states, ack_states=acks, oldest_pending_seconds=age)

    # --- received messages, for operators (gateway messages list/show) -------------------------

    def list_received(
        self,
        *,
        since: datetime | None = None,
        outcome: str | None = None,
        limit: int | None = 200,
    ) -> list[ReceivedSummary]:
        """Received rows with their message ids (no bytes), oldest first."""
        where: list[str] = []
        params: list[object] = []
        if since is not None:
            where.append("r.received_at >= ?")
            params.append(_iso(since))
        if outcome is not None:
            where.append("r.outcome = ?")
            params.append(outcome)
        sql = self._RECEIVED + (f"WHERE {' AND '.join(where)} " if where else "") + "ORDER BY r.id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_received(r) for r in self._query(sql, params)]

    def received_summary(self, received_id: int) -> ReceivedSummary | None:
        """One received row with its message ids, or None."""
        rows = self._query(self._RECEIVED + "WHERE r.id = ?", (received_id,))
        return _received(rows[0]) if rows else None

    def replies_of(self, received_id: int) -> list[ReplySummary]:
        """The replies a received message produced, and those a received signal settled."""
        rows = self._query(
            self._SUMMARY + "WHERE received_id = ? OR ack_received_id = ? ORDER BY id",
            (received_id, received_id),
        )
        return [_summary(r) for r in rows]

    _RECEIVED = (
        "SELECT r.id, r.received_at, r.source, r.source_ref, r.sha256, r.size, r.outcome, "
        "r.detail, r.duplicate_of, m.ebxml_message_id, m.conversation_id, m.cpa_id, "
        "m.from_her, m.to_her, m.service, m.action, m.msg_id, m.msg_type, m.sender_her, "
        "m.sender_name, m.apprec_status, "
        "(SELECT COUNT(*) FROM bills b WHERE b.message_id = m.id) "
        "FROM received r LEFT JOIN messages m ON m.received_id = r.id "
    )

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

    # =========================================================================================
    # case work: reading bills for case workers, overrides, rebehandling (gateway.casework)
    # =========================================================================================

    _CASE_BILL = (
        "SELECT b.id, b.message_id, b.position, b.sender_her, m.sender_name, b.practitioner_id, "
        "b.guid, b.regning_nr, b.dato_tid, b.kreditering, b.betalt_egenandel, b.kode_egenandel, "
        "b.patient_id, b.patient_id_type, b.sum_refusjon_ore, b.status, b.approved_ore, "
        "b.credited_by, m.received_id, r.received_at, m.ruleset_version, m.apprec_status, "
        "m.msg_id, e.status, e.approved_ore, e.override_id, e.override_kind "
        "FROM bills b JOIN messages m ON m.id = b.message_id "
        "JOIN received r ON r.id = m.received_id "
        "JOIN bill_status_effective e ON e.bill_id = b.id "
    )

    def case_bill(self, bill_id: int) -> CaseBill | None:
        """One stored bill with its message, receipt and effective status."""
        rows = self._query(self._CASE_BILL + "WHERE b.id = ?", (bill_id,))
        return _case_bill(rows[0]) if rows else None

    def case_message_bills(self, message_id: int) -> list[CaseBill]:
        """The stored bills of one message, in message order."""
        rows = self._query(
            self._CASE_BILL + "WHERE b.message_id = ? ORDER BY b.position", (message_id,)
        )
        return [_case_bill(r) for r in rows]

    def case_bill_ids(
        self,
        *,
        guid: str | None = None,
        sender_her: str | None = None,
        regning_nr: str | None = None,
    ) -> list[int]:
        """Ids of the bills with this Guid and/or this sender and RegningNr, oldest first."""
        wanted = {"guid": guid, "sender_her": sender_her, "regning_nr": regning_nr}
        chosen = {column: value for column, value in wanted.items() if value is not None}
        if not chosen:
            return []
        where = " AND ".join(f"{column} = ?" for column in chosen)
        rows = self._query(f"SELECT id FROM bills WHERE {where} ORDER BY id", list(chosen.values()))
        return [int(r[0]) for r in rows]

    def case_bill_lines(self, bill_id: int) -> list[CaseLine]:
        """The takst, diagnosis, procedure and tooth lines of a bill, in stored order."""
        rows = self._query(
            "SELECT kind, code, code_system, amount_ore, antall FROM bill_lines "
            "WHERE bill_id = ? ORDER BY position",
            (bill_id,),
        )
        return [
            CaseLine(
                kind=str(r[0]),
                code=str(r[1]),
                code_system=None if r[2] is None else str(r[2]),
                amount_ore=None if r[3] is None else int(r[3]),
                antall=None if r[4] is None else int(r[4]),
            )
            for r in rows
        ]

    def case_findings(self, message_id: int) -> list[StoredFinding]:
        """Every finding of the original decision on a message (bill_id None: message rules)."""
        rows = self._query(
            "SELECT id, bill_id, rule_id, rule_version, code, severity, text, facts "
            "FROM findings WHERE message_id = ? ORDER BY id",
            (message_id,),
        )
        return [
            StoredFinding(
                id=int(r[0]),
                bill_id=None if r[1] is None else int(r[1]),
                rule_id=str(r[2]),
                rule_version=int(r[3]),
                code=str(r[4]),
                severity=str(r[5]),
                text=str(r[6]),
                facts={str(k): str(v) for k, v in json.loads(str(r[7])).items()},
            )
            for r in rows
        ]

    def received_raw(self, received_id: int) -> bytes:
        """The original bytes of an intake."""
        rows = self._query("SELECT raw FROM received WHERE id = ?", (received_id,))
        if not rows:
            raise StorageError(f"no received message {received_id}")
        return bytes(rows[0][0])

    def case_replay_bills(
        self, since: datetime, until: datetime | None, *, by_received: bool
    ) -> list[tuple[int, int]]:
        """(bill id, message id) of the bills treated (DatoTid, naive local time) or received
        (``by_received``; aware times) in ``[since, until)``, in arrival order."""
        if by_received:
            column = "r.received_at"
            low = since.astimezone(UTC).isoformat(timespec="microseconds")
            high = (
                None
                if until is None
                else until.astimezone(UTC).isoformat(timespec="microseconds")
            )
        else:
            column = "b.dato_tid"
            low = since.isoformat()
            high = None if until is None else until.isoformat()
        sql = (
            "SELECT b.id, b.message_id FROM bills b JOIN messages m ON m.id = b.message_id "
            f"JOIN received r ON r.id = m.received_id WHERE {column} >= ? "
        )
        params: list[object] = [low]
        if high is not None:
            sql += f"AND {column} < ? "
            params.append(high)
        rows = self._query(sql + "ORDER BY b.message_id, b.position", params)
        return [(int(r[0]), int(r[1])) for r in rows]

    # --- overrides ----------------------------------------------------------------------------

    def record_override(
        self,
        bill_id: int,
        *,
        decision: str,
        amount_ore: int,
        reason: str,
        by: str,
        kind: str = "override",
        ruleset_version: str | None = None,
        details: str | None = None,
        at: datetime | None = None,
    ) -> OverrideRecord:
        """Add an override of a bill's decision (the decision itself is never edited). The
        previous effective status is read in the same transaction. Checks of what may be
        overridden are the caller's (``gateway.casework.overrides``)."""
        when = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
        try:
            with self._transaction() as db:
                row = db.execute(
                    "SELECT status, approved_ore FROM bill_status_effective WHERE bill_id = ?",
                    (bill_id,),
                ).fetchone()
                if row is None:
                    raise StorageError(f"no bill {bill_id}")
                cur = db.execute(
                    'INSERT INTO overrides(bill_id, decision, amount_ore, reason, "by", "at", '
                    "previous_status, previous_ore, kind, ruleset_version, details) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        bill_id,
                        decision,
                        amount_ore,
                        reason,
                        by,
                        when,
                        row[0],
                        int(row[1]),
                        kind,
                        ruleset_version,
                        details,
                    ),
                )
                override_id = int(cur.lastrowid or 0)
                # Keep the one-live-approval guard in step with the effective status.
                db.execute(
                    "UPDATE bills SET live = (? = 'godkjent' AND kreditering = 0 "
                    "AND credited_by IS NULL) WHERE id = ?",
                    (decision, bill_id),
                )
        except sqlite3.Error as exc:
            raise StorageError(f"could not store override of bill {bill_id}: {exc}") from exc
        found = [o for o in self.overrides_for(bill_id) if o.id == override_id]
        return found[0]

    def overrides_for(self, bill_id: int) -> list[OverrideRecord]:
        """Every override of a bill, oldest first (the last one is in force)."""
        rows = self._query(
            'SELECT id, bill_id, decision, amount_ore, reason, "by", "at", previous_status, '
            "previous_ore, kind, ruleset_version, details FROM overrides WHERE bill_id = ? "
            "ORDER BY id",
            (bill_id,),
        )
        return [
            OverrideRecord(
                id=int(r[0]),
                bill_id=int(r[1]),
                decision=str(r[2]),
                amount_ore=int(r[3]),
                reason=str(r[4]),
                by=str(r[5]),
                at=datetime.fromisoformat(str(r[6])),
                previous_status=str(r[7]),
                previous_ore=int(r[8]),
                kind=str(r[9]),
                ruleset_version=None if r[10] is None else str(r[10]),
                details=None if r[11] is None else str(r[11]),
            )
            for r in rows
        ]

    def effective_bill_status(self, bill_id: int) -> EffectiveStatus | None:
        """The bill's status and approved amount as they stand: the latest override, else the
        engine's decision (the ``bill_status_effective`` view)."""
        rows = self._query(
            "SELECT bill_id, status, approved_ore, overridden, override_id, override_kind "
            "FROM bill_status_effective WHERE bill_id = ?",
            (bill_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return EffectiveStatus(
            bill_id=int(r[0]),
            status=str(r[1]),
            approved_ore=int(r[2]),
            overridden=bool(r[3]),
            override_id=None if r[4] is None else int(r[4]),
            override_kind=None if r[5] is None else str(r[5]),
        )

    def effective_live_approvals(self, sender_her: str, guid: str) -> list[int]:
        """Ids of original, uncredited bills with this sender and Guid that are effectively
        godkjent (after overrides): more than one would be paid twice."""
        rows = self._query(
            "SELECT b.id FROM bills b JOIN bill_status_effective e ON e.bill_id = b.id "
            "WHERE b.sender_her = ? AND b.guid = ? AND b.kreditering = 0 "
            "AND b.credited_by IS NULL AND e.status = 'godkjent' ORDER BY b.id",
            (sender_her, guid),
        )
        return [int(r[0]) for r in rows]

    # --- history as of a message (re-running a stored message) ---------------------------------

    def approved_bill_before(
        self, sender_her: str, guid: str, before_message_id: int
    ) -> StoredBill | None:
        """``approved_bill`` as of the arrival of message ``before_message_id``: only bills of
        earlier messages, and a credit counts only if it came in an earlier message too."""
        return self._approved_bill(sender_her, guid, before_message_id)

    def live_approved_message_ids(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """(sender HER id, Guid) -> message id of the live approved original with that key (the
        bills the history queries return; at most one per key)."""
        result: dict[tuple[str, str], int] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), 400):
            chunk = unique[start : start + 400]
            values = ", ".join("(?, ?)" for _ in chunk)
            rows = self._query(
                "SELECT b.sender_her, b.guid, b.message_id FROM bills b WHERE "
                + LIVE_APPROVED
                + f" AND (b.sender_her, b.guid) IN (VALUES {values})",
                [v for key in chunk for v in key],
            )
            result.update({(str(s), str(g)): int(m) for s, g, m in rows})
        return result

    def patient_code_count_from(
        self,
        patient_id: str,
        codes: frozenset[str],
        start: datetime,
        end: datetime,
        from_message_id: int,
    ) -> int:
        """The part of ``patient_code_count`` that comes from message ``from_message_id`` and
        later ones."""
        return self._code_count(patient_id, codes, start, end, from_message_id)




def _case_bill(r: sqlite3.Row) -> CaseBill:
    return CaseBill(
        id=int(r[0]),
        message_id=int(r[1]),
        position=int(r[2]),
        sender_her=str(r[3]),
        sender_name=None if r[4] is None else str(r[4]),
        practitioner_id=str(r[5]),
        guid=str(r[6]),
        regning_nr=str(r[7]),
        dato_tid=datetime.fromisoformat(str(r[8])),
        kreditering=bool(r[9]),
        betalt_egenandel=bool(r[10]),
        kode_egenandel=None if r[11] is None else str(r[11]),
        patient_id=str(r[12]),
        patient_id_type=str(r[13]),
        sum_refusjon_ore=int(r[14]),
        status=str(r[15]),
        approved_ore=int(r[16]),
        credited_by=None if r[17] is None else int(r[17]),
        received_id=int(r[18]),
        received_at=datetime.fromisoformat(str(r[19])),
        ruleset_version=None if r[20] is None else str(r[20]),
        apprec_status=None if r[21] is None else int(r[21]),
        msg_id=None if r[22] is None else str(r[22]),
        effective_status=str(r[23]),
        effective_ore=int(r[24]),
        override_id=None if r[25] is None else int(r[25]),
        override_kind=None if r[26] is None else str(r[26]),
    )


