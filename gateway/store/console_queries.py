"""Reads the web console and the claim status API need that the ``Store`` does not offer yet:
the manual-control worklist, bill search, a sender's messages and bills with paging and
``since``, and the payout lines of bills. Read only; on the ``Store``'s connection.

The payout tables belong to ``gateway.payout`` (its own schema, created on first use); they are
created here too (``IF NOT EXISTS``) so a gateway that never paid can still be asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.payout import ledger, sending
from gateway.store.sqlite import Store
from gateway.store.transactions import connect

#: In manual control (kontrolleres manuelt): flagged by a rule, not yet decided by a case worker
#: (a rebehandling does not count, as for the payout ledger), not consumed by a credit.
_IN_MANUAL = (
    "b.manual = 1 AND b.kreditering = 0 AND b.credited_by IS NULL "
    "AND COALESCE(e.override_kind, '') <> 'override'"
)

#: The latest change of a bill: received, overridden, or in a payout run. Alias b, r.
_CHANGED = (
    "MAX(r.received_at, "
    "COALESCE((SELECT MAX(o.at) FROM overrides o WHERE o.bill_id = b.id), ''), "
    "COALESCE((SELECT MAX(p.created_at) FROM payout_lines l JOIN payout_runs p "
    "ON p.id = l.run_id WHERE l.bill_id = b.id), ''))"
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One bill in manual control, as the worklist shows it."""

    bill_id: int
    received_at: datetime
    sender_her: str
    sender_name: str | None
    practitioner_type: str | None
    regning_nr: str
    dato_tid: datetime
    sum_refusjon_ore: int
    rules: tuple[str, ...]  # the manual-control rules that fired: "RULE-ID (CODE)"


@dataclass(frozen=True, slots=True)
class WorklistFilter:
    sender_her: str | None = None
    practitioner_type: str | None = None
    rule_id: str | None = None


@dataclass(frozen=True, slots=True)
class WorklistSummary:
    count: int
    oldest: datetime | None
    senders: tuple[str, ...]
    practitioner_types: tuple[str, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BillSearch:
    """What a case worker searches by; every given field must match."""

    guid: str | None = None
    regning_nr: str | None = None
    msg_id: str | None = None
    sender_her: str | None = None
    treated_from: datetime | None = None  # naive local, DatoTid >=
    treated_until: datetime | None = None  # naive local, DatoTid <
    national_id: str | None = None  # only for a role allowed it (checked by the caller)

    @property
    def empty(self) -> bool:
        return all(getattr(self, f) in (None, "") for f in self.__slots__)


@dataclass(frozen=True, slots=True)
class PayoutLine:
    bill_id: int
    run_id: int
    run_key: str
    run_at: datetime
    run_state: str
    kind: str
    amount_ore: int


@dataclass(frozen=True, slots=True)
class BillFlags:
    """Columns of a bill that ``CaseBill`` does not carry."""

    bill_id: int
    manual: bool
    practitioner_type: str | None
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class SenderMessage:
    """A message of one sender, for the status API."""

    message_id: int
    received_id: int
    msg_id: str | None
    received_at: datetime
    outcome: str
    apprec_status: int | None
    bills: int
    changed_at: datetime


class ConsoleQueries:
    """Read-only queries on the claims database for the console and the status API."""

    def __init__(self, store: Store) -> None:
        self._store = store
        with closing(connect(store.path, schema=ledger.SCHEMA + sending.SCHEMA)):
            pass

    # --- worklist ------------------------------------------------------------------------------

    def _worklist_where(self, f: WorklistFilter) -> tuple[str, list[object]]:
        where = [_IN_MANUAL]
        params: list[object] = []
        if f.sender_her:
            where.append("b.sender_her = ?")
            params.append(f.sender_her)
        if f.practitioner_type:
            where.append("b.practitioner_type = ?")
            params.append(f.practitioner_type)
        if f.rule_id:
            where.append(
                "EXISTS (SELECT 1 FROM findings x WHERE x.bill_id = b.id AND x.rule_id = ?)"
            )
            params.append(f.rule_id)
        return " AND ".join(where), params

    _FROM = (
        "FROM bills b JOIN messages m ON m.id = b.message_id "
        "JOIN received r ON r.id = m.received_id "
        "JOIN bill_status_effective e ON e.bill_id = b.id "
    )

    def worklist(self, f: WorklistFilter, *, limit: int, offset: int) -> list[WorkItem]:
        """Bills in manual control, oldest received first."""
        where, params = self._worklist_where(f)
        rows = self._store._query(
            "SELECT b.id, r.received_at, b.sender_her, m.sender_name, b.practitioner_type, "
            "b.regning_nr, b.dato_tid, b.sum_refusjon_ore, "
            "(SELECT group_concat(x.rule_id || ' (' || x.code || ')', ', ') FROM findings x "
            "WHERE x.bill_id = b.id AND x.severity = 'manual') "
            + self._FROM + "WHERE " + where + " ORDER BY r.received_at, b.id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [
            WorkItem(
                bill_id=int(r[0]),
                received_at=datetime.fromisoformat(str(r[1])),
                sender_her=str(r[2]),
                sender_name=None if r[3] is None else str(r[3]),
                practitioner_type=None if r[4] is None else str(r[4]),
                regning_nr=str(r[5]),
                dato_tid=datetime.fromisoformat(str(r[6])),
                sum_refusjon_ore=int(r[7]),
                rules=tuple(x for x in str(r[8] or "").split(", ") if x),
            )
            for r in rows
        ]

    def worklist_summary(self, f: WorklistFilter) -> WorklistSummary:
        """How many bills the filter leaves, the oldest, and the values to filter by (over the
        whole worklist)."""
        where, params = self._worklist_where(f)
        count, oldest = self._store._query(
            "SELECT COUNT(*), MIN(r.received_at) " + self._FROM + "WHERE " + where, params
        )[0]
        everything = self._FROM + "WHERE " + _IN_MANUAL
        senders = self._store._query(
            "SELECT DISTINCT b.sender_her " + everything + " ORDER BY 1"
        )
        types = self._store._query(
            "SELECT DISTINCT b.practitioner_type " + everything
            + " AND b.practitioner_type IS NOT NULL ORDER BY 1"
        )
        rules = self._store._query(
            "SELECT DISTINCT x.rule_id FROM findings x WHERE x.severity = 'manual' AND "
            "x.bill_id IN (SELECT b.id " + everything + ") ORDER BY 1"
        )
        return WorklistSummary(
            count=int(count),
            oldest=None if oldest is None else datetime.fromisoformat(str(oldest)),
            senders=tuple(str(r[0]) for r in senders),
            practitioner_types=tuple(str(r[0]) for r in types),
            rules=tuple(str(r[0]) for r in rules),
        )

    # --- search --------------------------------------------------------------------------------

    def search_bills(self, s: BillSearch, *, limit: int) -> list[int]:
        """Ids of the bills matching every field of ``s``, newest first."""
        where: list[str] = []
        params: list[object] = []
        for column, value in (
            ("b.guid", s.guid),
            ("b.regning_nr", s.regning_nr),
            ("m.msg_id", s.msg_id),
            ("b.sender_her", s.sender_her),
            ("b.patient_id", s.national_id),
        ):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if s.treated_from is not None:
            where.append("b.dato_tid >= ?")
            params.append(s.treated_from.isoformat())
        if s.treated_until is not None:
            where.append("b.dato_tid < ?")
            params.append(s.treated_until.isoformat())
        if not where:
            return []
        rows = self._store._query(
            "SELECT b.id FROM bills b JOIN messages m ON m.id = b.message_id WHERE "
            + " AND ".join(where) + " ORDER BY b.id DESC LIMIT ?",
            (*params, limit),
        )
        return [int(r[0]) for r in rows]

    # --- bills ---------------------------------------------------------------------------------

    def bill_flags(self, bill_ids: Sequence[int]) -> dict[int, BillFlags]:
        """``manual``, practitioner type and latest change of each bill."""
        if not bill_ids:
            return {}
        marks = ", ".join("?" for _ in bill_ids)
        rows = self._store._query(
            f"SELECT b.id, b.manual, b.practitioner_type, {_CHANGED} FROM bills b "
            "JOIN messages m ON m.id = b.message_id JOIN received r ON r.id = m.received_id "
            f"WHERE b.id IN ({marks})",
            list(bill_ids),
        )
        return {
            int(r[0]): BillFlags(
                int(r[0]), bool(r[1]), None if r[2] is None else str(r[2]),
                datetime.fromisoformat(str(r[3])),
            )
            for r in rows
        }

    def credited_original(self, credit_bill_id: int) -> int | None:
        """The original bill a credit consumed, if any."""
        rows = self._store._query(
            "SELECT id FROM bills WHERE credited_by = ?", (credit_bill_id,)
        )
        return int(rows[0][0]) if rows else None

    def payout_lines(self, bill_ids: Sequence[int]) -> list[PayoutLine]:
        """The payout lines of these bills, oldest run first."""
        if not bill_ids:
            return []
        marks = ", ".join("?" for _ in bill_ids)
        rows = self._store._query(
            "SELECT l.bill_id, l.run_id, p.run_key, p.created_at, p.state, l.kind, l.amount_ore "
            "FROM payout_lines l JOIN payout_runs p ON p.id = l.run_id "
            f"WHERE l.bill_id IN ({marks}) ORDER BY l.run_id, l.bill_id",
            list(bill_ids),
        )
        return [
            PayoutLine(int(r[0]), int(r[1]), str(r[2]), datetime.fromisoformat(str(r[3])),
                       str(r[4]), str(r[5]), int(r[6]))
            for r in rows
        ]

    # --- one sender's claims (status API) ------------------------------------------------------

    _MESSAGE = (
        "SELECT m.id AS id, m.received_id, m.msg_id, r.received_at, r.outcome, m.apprec_status, "
        "(SELECT COUNT(*) FROM bills b WHERE b.message_id = m.id), "
        "MAX(r.received_at, COALESCE((SELECT MAX(" + _CHANGED.replace("r.received_at, ", "")
        + ") FROM bills b WHERE b.message_id = m.id), '')) AS changed "
        "FROM messages m JOIN received r ON r.id = m.received_id "
    )

    def sender_messages(
        self, sender_her: str, *, since: datetime | None, after_id: int, limit: int
    ) -> list[SenderMessage]:
        """The sender's messages with a MsgHead, in arrival order after ``after_id``; with
        ``since`` only those received or changed (a bill overridden or paid) since then."""
        sql = (
            "SELECT * FROM (" + self._MESSAGE + "WHERE m.sender_her = ? AND m.id > ?) "
        )
        params: list[object] = [sender_her, after_id]
        if since is not None:
            sql += "WHERE changed >= ? "
            params.append(_iso(since))
        rows = self._store._query(sql + "ORDER BY id LIMIT ?", (*params, limit))
        return [_message(r) for r in rows]

    def sender_message(self, sender_her: str, msg_id: str) -> SenderMessage | None:
        rows = self._store._query(
            self._MESSAGE + "WHERE m.sender_her = ? AND m.msg_id = ?", (sender_her, msg_id)
        )
        return _message(rows[0]) if rows else None

    def sender_bill_ids(
        self, sender_her: str, *, since: datetime | None, after_id: int, limit: int
    ) -> list[int]:
        """Ids of the sender's bills after ``after_id``; with ``since`` only those received or
        changed since then."""
        sql = (
            "SELECT b.id FROM bills b JOIN messages m ON m.id = b.message_id "
            "JOIN received r ON r.id = m.received_id WHERE b.sender_her = ? AND b.id > ? "
        )
        params: list[object] = [sender_her, after_id]
        if since is not None:
            sql += f"AND {_CHANGED} >= ? "
            params.append(_iso(since))
        rows = self._store._query(sql + "ORDER BY b.id LIMIT ?", (*params, limit))
        return [int(r[0]) for r in rows]


def _message(r: Sequence[object]) -> SenderMessage:
    return SenderMessage(
        message_id=int(str(r[0])),
        received_id=int(str(r[1])),
        msg_id=None if r[2] is None else str(r[2]),
        received_at=datetime.fromisoformat(str(r[3])),
        outcome=str(r[4]),
        apprec_status=None if r[5] is None else int(str(r[5])),
        bills=int(str(r[6])),
        changed_at=datetime.fromisoformat(str(r[7])),
    )
