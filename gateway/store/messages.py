"""Received messages as operators see them (``gateway messages list/show``, ``gateway status``):
what came in, what became of it, and what we answered."""

from __future__ import annotations

from datetime import datetime

from gateway.errors import StorageError
from gateway.records import ReceivedSummary, ReplySummary
from gateway.store.engine import Engine
from gateway.store.replies import SUMMARY
from gateway.store.rows import Columns, field, filtered, moment, opt_int, opt_str, stored_moment

__all__ = ["ReceivedMessages"]

#: A received row with the ids of its message (no bytes, no national ids). A duplicate stores
#: no message of its own: its sender is the original's (o), the same by the duplicate's keys.
_RECEIVED = Columns(
    ReceivedSummary,
    (
        field("id", int, "r.id"),
        field("received_at", moment, "r.received_at"),
        field("source", str, "r.source"),
        field("source_ref", str, "r.source_ref"),
        field("sha256", str, "r.sha256"),
        field("size", int, "r.size"),
        field("outcome", str, "r.outcome"),
        field("detail", opt_str, "r.detail"),
        field("duplicate_of", opt_int, "r.duplicate_of"),
        field("ebxml_message_id", opt_str, "m.ebxml_message_id"),
        field("conversation_id", opt_str, "m.conversation_id"),
        field("cpa_id", opt_str, "m.cpa_id"),
        field("from_her", opt_str, "COALESCE(m.from_her, o.from_her)"),
        field("to_her", opt_str, "m.to_her"),
        field("service", opt_str, "m.service"),
        field("action", opt_str, "m.action"),
        field("msg_id", opt_str, "m.msg_id"),
        field("msg_type", opt_str, "m.msg_type"),
        field("sender_her", opt_str, "COALESCE(m.sender_her, o.sender_her)"),
        field("sender_name", opt_str, "COALESCE(m.sender_name, o.sender_name)"),
        field("apprec_status", opt_int, "m.apprec_status"),
        field("bills", int, "(SELECT COUNT(*) FROM bills b WHERE b.message_id = m.id)"),
    ),
)


_RECEIVED_FROM = (
    "FROM received r LEFT JOIN messages m ON m.received_id = r.id "
    "LEFT JOIN messages o ON o.received_id = r.duplicate_of "
)


class ReceivedMessages:
    """Reading the ``received`` table with its messages and replies."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list_received(
        self,
        *,
        since: datetime | None = None,
        outcome: str | None = None,
        limit: int | None = 200,
    ) -> list[ReceivedSummary]:
        """Received rows with their message ids (no bytes), oldest first."""
        where, params = filtered(
            (
                ("r.received_at >= ?", None if since is None else stored_moment(since)),
                ("r.outcome = ?", outcome),
            ),
            "r.id",
            limit,
        )
        return _RECEIVED.fetch(self._engine, _RECEIVED_FROM + where, params)

    def received_summary(self, received_id: int) -> ReceivedSummary | None:
        """One received row with its message ids, or None."""
        return _RECEIVED.fetch_one(self._engine, _RECEIVED_FROM + "WHERE r.id = ?", (received_id,))

    def replies_of(self, received_id: int) -> list[ReplySummary]:
        """The replies a received message produced, and those a received signal settled."""
        return SUMMARY.fetch(
            self._engine,
            "FROM replies WHERE received_id = ? OR ack_received_id = ? ORDER BY id",
            (received_id, received_id),
        )

    def received_raw(self, received_id: int) -> bytes:
        """The original bytes of an intake."""
        found = self._engine.one("SELECT raw FROM received WHERE id = ?", (received_id,))
        if found is None:
            raise StorageError(f"no received message {received_id}")
        return bytes(found[0])

    def counts(self) -> dict[str, int]:
        """Number of received messages per outcome, and pending replies."""
        result = {
            str(outcome): int(n)
            for outcome, n in self._engine.rows(
                "SELECT outcome, COUNT(*) FROM received GROUP BY outcome"
            )
        }
        pending = self._engine.one("SELECT COUNT(*) FROM replies WHERE state = 'pending'")
        result["pending_replies"] = 0 if pending is None else int(pending[0])
        return result
