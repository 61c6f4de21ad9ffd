"""What the web console and the claim status API read beyond case work and the outbox: the
manual-control worklist, bill search, a bill's payout lines and latest change, and one sender's
messages and bills with paging and ``since``. Read only.

The payout tables are ``gateway.payout.ledger``'s (its own schema on the claims database); a
reader of them makes sure they exist first (``ledger.create_tables``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from gateway.records import (
    BillFlags,
    BillSearch,
    PayoutLine,
    SenderMessage,
    WorkItem,
    WorklistFilter,
    WorklistSummary,
)
from gateway.store.engine import Engine
from gateway.store.rows import (
    Columns,
    field,
    filtered,
    marks,
    moment,
    opt_int,
    opt_moment,
    opt_str,
    stored_moment,
)

__all__ = ["ConsoleViews"]

#: In manual control (kontrolleres manuelt): flagged by a rule, not yet decided by a case worker
#: (a rebehandling does not count, as for the payout ledger), not consumed by a credit.
#: Aliases b (bills), e (bill_status_effective).
_IN_MANUAL = (
    "b.manual = 1 AND b.kreditering = 0 AND b.credited_by IS NULL "
    "AND COALESCE(e.override_kind, '') <> 'override'"
)

#: Bills with their message, receipt and effective status.
_BILLS_FROM = (
    "FROM bills b JOIN messages m ON m.id = b.message_id "
    "JOIN received r ON r.id = m.received_id "
    "JOIN bill_status_effective e ON e.bill_id = b.id "
)

#: The latest change of a bill (aliases b, r): received, overridden, or in a payout run.
_BILL_CHANGED = (
    "(SELECT MAX(c.changed) FROM (SELECT r.received_at AS changed "
    'UNION ALL SELECT o."at" FROM overrides o WHERE o.bill_id = b.id '
    "UNION ALL SELECT p.created_at FROM payout_lines l JOIN payout_runs p ON p.id = l.run_id "
    "WHERE l.bill_id = b.id) AS c)"
)

#: The latest change of a message (aliases m, r): received, or one of its bills overridden or
#: in a payout run.
_MESSAGE_CHANGED = (
    "(SELECT MAX(c.changed) FROM (SELECT r.received_at AS changed "
    'UNION ALL SELECT o."at" FROM overrides o JOIN bills x ON x.id = o.bill_id '
    "WHERE x.message_id = m.id "
    "UNION ALL SELECT p.created_at FROM payout_lines l JOIN payout_runs p ON p.id = l.run_id "
    "JOIN bills x ON x.id = l.bill_id WHERE x.message_id = m.id) AS c)"
)

#: A bill in manual control; its rules are read apart (``_manual_rules``).
_WORK_ITEM = Columns(
    functools.partial(WorkItem, rules=()),
    (
        field("bill_id", int, "b.id"),
        field("received_at", moment, "r.received_at"),
        field("sender_her", str, "b.sender_her"),
        field("sender_name", opt_str, "m.sender_name"),
        field("practitioner_type", opt_str, "b.practitioner_type"),
        field("regning_nr", str, "b.regning_nr"),
        field("dato_tid", moment, "b.dato_tid"),
        field("sum_refusjon_ore", int, "b.sum_refusjon_ore"),
    ),
)

_FLAGS = Columns(
    BillFlags,
    (
        field("bill_id", int, "b.id"),
        field("manual", bool, "b.manual"),
        field("practitioner_type", opt_str, "b.practitioner_type"),
        field("changed_at", moment, _BILL_CHANGED),
    ),
)

_PAYOUT_LINE = Columns(
    PayoutLine,
    (
        field("bill_id", int, "l.bill_id"),
        field("run_id", int, "l.run_id"),
        field("run_key", str, "p.run_key"),
        field("run_at", moment, "p.created_at"),
        field("run_state", str, "p.state"),
        field("kind", str, "l.kind"),
        field("amount_ore", int, "l.amount_ore"),
    ),
)

_SENDER_MESSAGE = Columns(
    SenderMessage,
    (
        field("message_id", int, "m.id"),
        field("received_id", int, "m.received_id"),
        field("msg_id", opt_str, "m.msg_id"),
        field("received_at", moment, "r.received_at"),
        field("outcome", str, "r.outcome"),
        field("apprec_status", opt_int, "m.apprec_status"),
        field("bills", int, "(SELECT COUNT(*) FROM bills x WHERE x.message_id = m.id)"),
        field("changed_at", moment, _MESSAGE_CHANGED),
    ),
)

_MESSAGES_FROM = "FROM messages m JOIN received r ON r.id = m.received_id "


class ConsoleViews:
    """Read-only queries for the console and the status API."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- worklist -------------------------------------------------------------------------------

    @staticmethod
    def _worklist_where(f: WorklistFilter) -> tuple[str, list[object]]:
        where = [_IN_MANUAL]
        params: list[object] = []
        for condition, value in (
            ("b.sender_her = ?", f.sender_her),
            ("b.practitioner_type = ?", f.practitioner_type),
            (
                "EXISTS (SELECT 1 FROM findings x WHERE x.bill_id = b.id AND x.rule_id = ?)",
                f.rule_id,
            ),
        ):
            if value:
                where.append(condition)
                params.append(value)
        return " AND ".join(where), params

    def worklist(self, f: WorklistFilter, *, limit: int, offset: int) -> list[WorkItem]:
        """Bills in manual control, oldest received first."""
        where, params = self._worklist_where(f)
        items = _WORK_ITEM.fetch(
            self._engine,
            _BILLS_FROM + f"WHERE {where} ORDER BY r.received_at, b.id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        rules = self._manual_rules([i.bill_id for i in items])
        return [dataclasses.replace(i, rules=rules.get(i.bill_id, ())) for i in items]

    def _manual_rules(self, bill_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """``RULE-ID (CODE)`` of each manual-control finding of these bills, in stored order."""
        if not bill_ids:
            return {}
        found: defaultdict[int, list[str]] = defaultdict(list)
        for bill_id, rule_id, code in self._engine.rows(
            "SELECT bill_id, rule_id, code FROM findings WHERE severity = 'manual' "
            f"AND bill_id IN ({marks(len(bill_ids))}) ORDER BY id",
            list(bill_ids),
        ):
            found[int(bill_id)].append(f"{rule_id} ({code})")
        return {bill_id: tuple(rules) for bill_id, rules in found.items()}

    def worklist_summary(self, f: WorklistFilter) -> WorklistSummary:
        """How many bills the filter leaves, the oldest, and the values to filter by (over the
        whole worklist)."""
        where, params = self._worklist_where(f)
        found = self._engine.one(
            f"SELECT COUNT(*), MIN(r.received_at) {_BILLS_FROM} WHERE {where}", params
        )
        assert found is not None  # an aggregate always gives a row
        everything = f"{_BILLS_FROM} WHERE {_IN_MANUAL}"
        senders = self._engine.rows(f"SELECT DISTINCT b.sender_her {everything} ORDER BY 1")
        types = self._engine.rows(
            f"SELECT DISTINCT b.practitioner_type {everything} "
            "AND b.practitioner_type IS NOT NULL ORDER BY 1"
        )
        rules = self._engine.rows(
            "SELECT DISTINCT x.rule_id FROM findings x WHERE x.severity = 'manual' AND "
            f"x.bill_id IN (SELECT b.id {everything}) ORDER BY 1"
        )
        return WorklistSummary(
            count=int(found[0]),
            oldest=opt_moment(found[1]),
            senders=tuple(str(r[0]) for r in senders),
            practitioner_types=tuple(str(r[0]) for r in types),
            rules=tuple(str(r[0]) for r in rules),
        )

    # --- search ---------------------------------------------------------------------------------

    def search_bills(self, s: BillSearch, *, limit: int) -> list[int]:
        """Ids of the bills matching every field of ``s``, newest first; none for an empty
        search."""
        conditions: list[tuple[str, object | None]] = [
            ("b.guid = ?", s.guid or None),
            ("b.regning_nr = ?", s.regning_nr or None),
            ("m.msg_id = ?", s.msg_id or None),
            ("b.sender_her = ?", s.sender_her or None),
            ("b.patient_id = ?", s.national_id or None),
            ("b.dato_tid >= ?", None if s.treated_from is None else s.treated_from.isoformat()),
            ("b.dato_tid < ?", None if s.treated_until is None else s.treated_until.isoformat()),
        ]
        if all(value is None for _, value in conditions):
            return []
        where, params = filtered(conditions, "b.id DESC", limit)
        rows = self._engine.rows(
            "SELECT b.id FROM bills b JOIN messages m ON m.id = b.message_id " + where, params
        )
        return [int(r[0]) for r in rows]

    # --- bills ----------------------------------------------------------------------------------

    def bill_flags(self, bill_ids: Sequence[int]) -> dict[int, BillFlags]:
        """``manual``, practitioner type and latest change of each bill."""
        if not bill_ids:
            return {}
        flags = _FLAGS.fetch(
            self._engine,
            "FROM bills b JOIN messages m ON m.id = b.message_id "
            f"JOIN received r ON r.id = m.received_id WHERE b.id IN ({marks(len(bill_ids))})",
            list(bill_ids),
        )
        return {f.bill_id: f for f in flags}

    def credited_original(self, credit_bill_id: int) -> int | None:
        """The original bill a credit consumed, if any."""
        found = self._engine.one("SELECT id FROM bills WHERE credited_by = ?", (credit_bill_id,))
        return None if found is None else int(found[0])

    def payout_lines(self, bill_ids: Sequence[int]) -> list[PayoutLine]:
        """The payout lines of these bills, oldest run first."""
        if not bill_ids:
            return []
        return _PAYOUT_LINE.fetch(
            self._engine,
            "FROM payout_lines l JOIN payout_runs p ON p.id = l.run_id "
            f"WHERE l.bill_id IN ({marks(len(bill_ids))}) ORDER BY l.run_id, l.bill_id",
            list(bill_ids),
        )

    # --- one sender's claims (status API) -------------------------------------------------------

    def sender_messages(
        self, sender_her: str, *, since: datetime | None, after_id: int, limit: int
    ) -> list[SenderMessage]:
        """The sender's messages with a MsgHead, in arrival order after ``after_id``; with
        ``since`` only those received or changed (a bill overridden or paid) since then."""
        where, params = filtered(
            (
                ("m.sender_her = ?", sender_her),
                ("m.id > ?", after_id),
                (f"{_MESSAGE_CHANGED} >= ?", None if since is None else stored_moment(since)),
            ),
            "m.id",
            limit,
        )
        return _SENDER_MESSAGE.fetch(self._engine, _MESSAGES_FROM + where, params)

    def sender_message(self, sender_her: str, msg_id: str) -> SenderMessage | None:
        """The sender's message with this MsgId; None for another sender's."""
        return _SENDER_MESSAGE.fetch_one(
            self._engine,
            _MESSAGES_FROM + "WHERE m.sender_her = ? AND m.msg_id = ?",
            (sender_her, msg_id),
        )

    def sender_bill_ids(
        self, sender_her: str, *, since: datetime | None, after_id: int, limit: int
    ) -> list[int]:
        """Ids of the sender's bills after ``after_id``; with ``since`` only those received or
        changed since then."""
        where, params = filtered(
            (
                ("b.sender_her = ?", sender_her),
                ("b.id > ?", after_id),
                (f"{_BILL_CHANGED} >= ?", None if since is None else stored_moment(since)),
            ),
            "b.id",
            limit,
        )
        rows = self._engine.rows(
            "SELECT b.id FROM bills b JOIN messages m ON m.id = b.message_id "
            "JOIN received r ON r.id = m.received_id " + where,
            params,
        )
        return [int(r[0]) for r in rows]
