"""Acknowledgment tracking of the replies sent with ebXML AckRequested (AppRecs, payout
decisions), and the partner's signals that settle them.

The reliability task (gateway.outbox.reliability) plans and schedules resends until the
partner's Acknowledgment or MessageError arrives (gateway.outbox.signals, ``record_signal``) or
the message's TimeToLive runs out (``expire``). A resend is the same row set back to pending:
the same bytes, the same ebXML MessageId.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from gateway.records import ReplySummary, SignalMatch
from gateway.store.engine import Engine
from gateway.store.replies import SUMMARY
from gateway.store.rows import stored_moment

__all__ = ["Acks"]


class Acks:
    """The ``ack_state`` side of the ``replies`` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def awaiting_acks(self) -> list[ReplySummary]:
        """Replies sent (or to be sent) with AckRequested whose signal has not come, oldest
        first; discarded ones are not waited for."""
        return SUMMARY.fetch(
            self._engine,
            "FROM replies WHERE ack_state = 'awaiting' AND state != 'discarded' ORDER BY id",
        )

    def unplanned_acks(self) -> list[ReplySummary]:
        """Delivered replies awaiting an ack with no resend time yet (just sent or resent)."""
        return SUMMARY.fetch(
            self._engine,
            "FROM replies WHERE ack_state = 'awaiting' AND state = 'delivered' "
            "AND next_attempt_at IS NULL ORDER BY id",
        )

    def plan_resend(self, reply_id: int, resend_at: datetime, expires_at: datetime) -> None:
        """When to resend a delivered reply if no ack has come, and when to stop waiting."""
        with self._engine.transaction(f"could not plan resend of reply {reply_id}") as tx:
            tx.execute(
                "UPDATE replies SET next_attempt_at = ?, expires_at = ? "
                "WHERE id = ? AND state = 'delivered' AND ack_state = 'awaiting'",
                (stored_moment(resend_at), stored_moment(expires_at), reply_id),
            )

    def due_for_resend(self, now: datetime | None = None) -> list[ReplySummary]:
        """Delivered replies still awaiting an ack whose resend time has come, before expiry."""
        at = stored_moment(now)
        return SUMMARY.fetch(
            self._engine,
            "FROM replies WHERE ack_state = 'awaiting' AND state = 'delivered' "
            "AND next_attempt_at IS NOT NULL AND next_attempt_at <= ? "
            "AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
            (at, at),
        )

    def schedule_resend(self, reply_ids: Sequence[int]) -> list[int]:
        """Put delivered, unacknowledged replies back to pending: the same bytes (same ebXML
        MessageId) are sent again. Returns the ids that changed."""
        with self._engine.transaction("could not schedule resends") as tx:
            return [
                reply_id
                for reply_id in reply_ids
                if tx.execute(
                    "UPDATE replies SET state = 'pending', next_attempt_at = NULL, "
                    "attempts = 0 WHERE id = ? AND state = 'delivered' "
                    "AND ack_state = 'awaiting'",
                    (reply_id,),
                )
            ]

    def expire(self, now: datetime | None = None) -> list[ReplySummary]:
        """Stop waiting for the acks whose time is up (``expires_at`` passed): their
        ``ack_state`` becomes 'expired'. Returns those rows, for the operator's log."""
        with self._engine.transaction("could not expire acknowledgments") as tx:
            expired = SUMMARY.fetch(
                tx,
                "FROM replies WHERE ack_state = 'awaiting' AND expires_at IS NOT NULL "
                "AND expires_at <= ? ORDER BY id",
                (stored_moment(now),),
            )
            # A resend still queued is pointless now: it counts as delivered, not sent.
            tx.execute_many(
                "UPDATE replies SET ack_state = 'expired', next_attempt_at = NULL, "
                "state = CASE WHEN state = 'pending' AND sends > 0 THEN 'delivered' "
                "ELSE state END WHERE id = ?",
                [(r.id,) for r in expired],
            )
        return expired

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
        with self._engine.transaction(f"could not record signal for {ref_to_message_id}") as tx:
            rows = tx.rows(
                "SELECT id, kind, ack_state FROM replies WHERE ebxml_message_id = ? ORDER BY id",
                (ref_to_message_id,),
            )
            for reply_id, reply_kind, ack_state in rows:
                settles = ack_state in (None, "awaiting", "expired")
                if settles:
                    tx.execute(
                        # (Every expression sees the row as it was before the update.)
                        "UPDATE replies SET ack_state = ?, ack_received_id = ?, ack_at = ?, "
                        "next_attempt_at = CASE WHEN state = 'delivered' OR "
                        "(state = 'pending' AND sends > 0) THEN NULL "
                        "ELSE next_attempt_at END, "
                        "state = CASE WHEN state = 'pending' AND sends > 0 "
                        "THEN 'delivered' ELSE state END WHERE id = ?",
                        (new_state, received_id, stored_moment(now), reply_id),
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
        return matches
