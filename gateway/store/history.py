"""Earlier claims as the rules see them (``ClaimHistory``), now or as of a stored message.

What counts as history is one definition, ``LIVE_APPROVED``: approved originals no credit has
consumed, where "approved" is the latest case worker's override, else the engine's decision.
The as-of queries serve ``gateway.casework.rerun``, which evaluates a stored message again
against the history it had when it arrived.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from gateway.records import from_ore
from gateway.rules.base import HistoricBill, StoredBill
from gateway.store.engine import Engine
from gateway.store.rows import marks

__all__ = ["EFFECTIVELY_APPROVED", "LIVE_APPROVED", "History"]

#: A bill counts as approved by its latest override (``overrides``), else by the engine's
#: decision: what history rules and the payout must see. Alias ``b`` for ``bills``.
EFFECTIVELY_APPROVED = (
    "COALESCE((SELECT o.decision FROM overrides o WHERE o.bill_id = b.id "
    "ORDER BY o.id DESC LIMIT 1), b.status) = 'godkjent'"
)

#: What the history queries see: live (uncredited) approved originals. Alias ``b``.
LIVE_APPROVED = "b.kreditering = 0 AND b.credited_by IS NULL AND " + EFFECTIVELY_APPROVED

#: Keys per query in ``live_approved_message_ids`` (two parameters each, well below limits).
_KEYS_PER_QUERY = 400


class History:
    """The store's ``ClaimHistory`` (indexed queries), and the same as of a stored message."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- ClaimHistory ---------------------------------------------------------------------------

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

    # --- as of a stored message (re-running it) -------------------------------------------------

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
        for start in range(0, len(unique), _KEYS_PER_QUERY):
            chunk = unique[start : start + _KEYS_PER_QUERY]
            values = ", ".join("(?, ?)" for _ in chunk)
            rows = self._engine.rows(
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

    # --- the queries ----------------------------------------------------------------------------

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
        found = self._engine.one(
            f"SELECT b.id, b.regning_nr, b.sum_refusjon_ore, ({credited}) AS credited "
            f"FROM bills b {join}"
            f"WHERE b.sender_her = ? AND b.guid = ? AND b.kreditering = 0 {earlier}"
            "AND " + EFFECTIVELY_APPROVED + " ORDER BY credited, b.id DESC LIMIT 1",
            params,
        )
        if found is None:
            return None
        bill_id, regning_nr, sum_ore, is_credited = found
        lines = self._engine.rows(
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
        sql = (
            "SELECT COALESCE(SUM(l.antall), 0) FROM bills b JOIN bill_lines l "
            "ON l.bill_id = b.id AND l.kind = 'takst' WHERE " + LIVE_APPROVED + " "
            "AND b.patient_id = ? AND b.dato_tid >= ? AND b.dato_tid < ? "
            f"AND lower(l.code) IN ({marks(len(codes))})"
        )
        params: list[object] = [patient_id, start.isoformat(), end.isoformat(), *sorted(codes)]
        if from_message_id is not None:
            sql += " AND b.message_id >= ?"
            params.append(from_message_id)
        total = self._engine.one(sql, params)
        return 0 if total is None else int(total[0])

    def _bills_between(
        self,
        column: Literal["practitioner_id", "patient_id"],
        value: str,
        start: datetime,
        end: datetime,
    ) -> list[HistoricBill]:
        """The history bills whose ``column`` is ``value``, in ``[start, end)`` by DatoTid, with
        their takst lines."""
        rows = self._engine.rows(
            "SELECT b.id, b.guid, b.regning_nr, b.sender_her, b.practitioner_id, b.patient_id, "
            "b.dato_tid FROM bills b WHERE " + LIVE_APPROVED + " "
            f"AND b.{column} = ? AND b.dato_tid >= ? AND b.dato_tid < ? ORDER BY b.dato_tid",
            (value, start.isoformat(), end.isoformat()),
        )
        if not rows:
            return []
        ids = [int(r[0]) for r in rows]
        lines: dict[int, list[tuple[str, int]]] = {}
        for bill_id, code, antall in self._engine.rows(
            f"SELECT bill_id, code, antall FROM bill_lines WHERE kind = 'takst' "
            f"AND bill_id IN ({marks(len(ids))}) ORDER BY bill_id, position",
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
