"""Case work (gateway.casework): stored bills as case workers see them, their overrides and
effective status, and the bills a rebehandling re-runs.

An override is its own audited row, never an edit of the decision: the latest one of a bill
decides its effective status (the ``bill_status_effective`` view), else the engine's decision
stands. Checks of what may be overridden are the caller's (``gateway.casework.overrides``).
"""

from __future__ import annotations

import json
from datetime import datetime

from gateway.errors import StorageError
from gateway.records import CaseBill, CaseLine, EffectiveStatus, OverrideRecord, StoredFinding
from gateway.store.engine import Engine
from gateway.store.rows import Columns, field, moment, opt_int, opt_str, stored_moment

__all__ = ["CaseWork"]

_CASE_BILL = Columns(
    CaseBill,
    (
        field("id", int, "b.id"),
        field("message_id", int, "b.message_id"),
        field("position", int, "b.position"),
        field("sender_her", str, "b.sender_her"),
        field("sender_name", opt_str, "m.sender_name"),
        field("practitioner_id", str, "b.practitioner_id"),
        field("guid", str, "b.guid"),
        field("regning_nr", str, "b.regning_nr"),
        field("dato_tid", moment, "b.dato_tid"),
        field("kreditering", bool, "b.kreditering"),
        field("betalt_egenandel", bool, "b.betalt_egenandel"),
        field("kode_egenandel", opt_str, "b.kode_egenandel"),
        field("patient_id", str, "b.patient_id"),
        field("patient_id_type", str, "b.patient_id_type"),
        field("sum_refusjon_ore", int, "b.sum_refusjon_ore"),
        field("status", str, "b.status"),
        field("approved_ore", int, "b.approved_ore"),
        field("credited_by", opt_int, "b.credited_by"),
        field("received_id", int, "m.received_id"),
        field("received_at", moment, "r.received_at"),
        field("ruleset_version", opt_str, "m.ruleset_version"),
        field("apprec_status", opt_int, "m.apprec_status"),
        field("msg_id", opt_str, "m.msg_id"),
        field("effective_status", str, "e.status"),
        field("effective_ore", int, "e.approved_ore"),
        field("override_id", opt_int, "e.override_id"),
        field("override_kind", opt_str, "e.override_kind"),
    ),
)

_CASE_BILLS_FROM = (
    "FROM bills b JOIN messages m ON m.id = b.message_id "
    "JOIN received r ON r.id = m.received_id "
    "JOIN bill_status_effective e ON e.bill_id = b.id "
)

_LINE = Columns(
    CaseLine,
    (
        field("kind"),
        field("code"),
        field("code_system", opt_str),
        field("amount_ore", opt_int),
        field("antall", opt_int),
    ),
)


def _facts(stored: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in json.loads(str(stored)).items()}


_FINDING = Columns(
    StoredFinding,
    (
        field("id", int),
        field("bill_id", opt_int),
        field("rule_id"),
        field("rule_version", int),
        field("code"),
        field("severity"),
        field("text"),
        field("facts", _facts),
    ),
)

_OVERRIDE = Columns(
    OverrideRecord,
    (
        field("id", int),
        field("bill_id", int),
        field("decision"),
        field("amount_ore", int),
        field("reason"),
        field("by", str, '"by"'),
        field("at", moment, '"at"'),
        field("previous_status"),
        field("previous_ore", int),
        field("kind"),
        field("ruleset_version", opt_str),
        field("details", opt_str),
    ),
)

_EFFECTIVE = Columns(
    EffectiveStatus,
    (
        field("bill_id", int),
        field("status"),
        field("approved_ore", int),
        field("overridden", bool),
        field("override_id", opt_int),
        field("override_kind", opt_str),
    ),
)


class CaseWork:
    """Reading bills for case workers; writing and reading overrides."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- bills ----------------------------------------------------------------------------------

    def bill(self, bill_id: int) -> CaseBill | None:
        """One stored bill with its message, receipt and effective status."""
        return _CASE_BILL.fetch_one(self._engine, _CASE_BILLS_FROM + "WHERE b.id = ?", (bill_id,))

    def message_bills(self, message_id: int) -> list[CaseBill]:
        """The stored bills of one message, in message order."""
        return _CASE_BILL.fetch(
            self._engine,
            _CASE_BILLS_FROM + "WHERE b.message_id = ? ORDER BY b.position",
            (message_id,),
        )

    def bill_ids(
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
        rows = self._engine.rows(
            f"SELECT id FROM bills WHERE {where} ORDER BY id", list(chosen.values())
        )
        return [int(r[0]) for r in rows]

    def bill_lines(self, bill_id: int) -> list[CaseLine]:
        """The takst, diagnosis, procedure and tooth lines of a bill, in stored order."""
        return _LINE.fetch(
            self._engine, "FROM bill_lines WHERE bill_id = ? ORDER BY position", (bill_id,)
        )

    def findings(self, message_id: int) -> list[StoredFinding]:
        """Every finding of the original decision on a message (bill_id None: message rules)."""
        return _FINDING.fetch(
            self._engine, "FROM findings WHERE message_id = ? ORDER BY id", (message_id,)
        )

    def replay_bills(
        self, since: datetime, until: datetime | None, *, by_received: bool
    ) -> list[tuple[int, int]]:
        """(bill id, message id) of the bills treated (DatoTid, naive local time) or received
        (``by_received``; aware times) in ``[since, until)``, in arrival order."""
        if by_received:
            column = "r.received_at"
            low = stored_moment(since)
            high = None if until is None else stored_moment(until)
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
        rows = self._engine.rows(sql + "ORDER BY b.message_id, b.position", params)
        return [(int(r[0]), int(r[1])) for r in rows]

    # --- overrides ------------------------------------------------------------------------------

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
        previous effective status is read in the same transaction."""
        when = stored_moment(at)
        with self._engine.transaction(f"could not store override of bill {bill_id}") as tx:
            previous = tx.one(
                "SELECT status, approved_ore FROM bill_status_effective WHERE bill_id = ?",
                (bill_id,),
            )
            if previous is None:
                raise StorageError(f"no bill {bill_id}")
            override_id = tx.insert(
                'INSERT INTO overrides(bill_id, decision, amount_ore, reason, "by", "at", '
                "previous_status, previous_ore, kind, ruleset_version, details) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    bill_id,
                    decision,
                    amount_ore,
                    reason,
                    by,
                    when,
                    previous[0],
                    int(previous[1]),
                    kind,
                    ruleset_version,
                    details,
                ),
            )
            # Keep the one-live-approval guard in step with the effective status.
            tx.execute(
                "UPDATE bills SET live = CASE WHEN ? = 'godkjent' AND kreditering = 0 "
                "AND credited_by IS NULL THEN 1 ELSE 0 END WHERE id = ?",
                (decision, bill_id),
            )
        return next(o for o in self.overrides_for(bill_id) if o.id == override_id)

    def overrides_for(self, bill_id: int) -> list[OverrideRecord]:
        """Every override of a bill, oldest first (the last one is in force)."""
        return _OVERRIDE.fetch(
            self._engine, "FROM overrides WHERE bill_id = ? ORDER BY id", (bill_id,)
        )

    def effective_bill_status(self, bill_id: int) -> EffectiveStatus | None:
        """The bill's status and approved amount as they stand: the latest override, else the
        engine's decision (the ``bill_status_effective`` view)."""
        return _EFFECTIVE.fetch_one(
            self._engine, "FROM bill_status_effective WHERE bill_id = ?", (bill_id,)
        )

    def effective_live_approvals(self, sender_her: str, guid: str) -> list[int]:
        """Ids of original, uncredited bills with this sender and Guid that are effectively
        godkjent (after overrides): more than one would be paid twice."""
        rows = self._engine.rows(
            "SELECT b.id FROM bills b JOIN bill_status_effective e ON e.bill_id = b.id "
            "WHERE b.sender_her = ? AND b.guid = ? AND b.kreditering = 0 "
            "AND b.credited_by IS NULL AND e.status = 'godkjent' ORDER BY b.id",
            (sender_her, guid),
        )
        return [int(r[0]) for r in rows]
