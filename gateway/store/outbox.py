"""Delivering the outbox (``replies``): due rows, deliveries, failures, dead letters, counts.

The outbox in use (gateway.outbox.files / .smtp) delivers the due rows and reports back here;
operators list, requeue and discard dead letters (``gateway outbox``). For a *pending* row
``next_attempt_at`` is when to try delivery again; for a *delivered* row awaiting an ack it is
when to resend (``gateway.store.acks``).

Several instances on one database: an outbox takes rows with ``claim_due``, which marks them
``claimed_by`` its engine's instance in one short transaction (``FOR UPDATE SKIP LOCKED``:
instances claiming at the same moment take different rows instead of waiting for each other).
A claimed row is left alone by the others for as long as its instance lives (it holds the lock
``instance:<name>``, ``Engine.held``); once it is gone its claims are void and another instance
delivers them. Recording the outcome (delivered, failed, dead) ends the claim.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from gateway.errors import StorageError
from gateway.records import OutboxSummary, PendingReply, ReplyRecord, ReplySummary
from gateway.store.engine import Engine, Transaction, instance_lock
from gateway.store.replies import PENDING, SUMMARY, write_replies
from gateway.store.retention import archived_error
from gateway.store.rows import filtered, marks, opt_moment, stored_moment

__all__ = ["Outbox", "record_delivery_in"]

#: Seconds between looks for the claims of instances that are gone (a claim costs no more).
DEAD_CLAIMS_EVERY = 2.0

#: How much of an error text a row keeps.
_ERROR_CHARS = 2000

#: Puts the note first in ``last_error`` and keeps what was there after it.
_NOTE_BEFORE_ERROR = (
    f"last_error = substr(? || COALESCE('; before: ' || last_error, ''), 1, {_ERROR_CHARS})"
)


def record_delivery_in(
    tx: Transaction,
    reply_ids: Sequence[int],
    *,
    now: datetime | None = None,
    acks_expected: bool = True,
) -> None:
    """``Outbox.record_delivery`` inside an open transaction (the intake's writer marks the
    replies whose files it staged in the transaction that commits them)."""
    at = stored_moment(now)
    untracked = "" if acks_expected else (
        ", ack_state = CASE WHEN ack_state = 'awaiting' THEN NULL ELSE ack_state END"
    )
    tx.execute_many(
        "UPDATE replies SET state = 'delivered', delivered_at = ?, "
        "sends = sends + 1, attempts = 0, next_attempt_at = NULL, claimed_by = NULL"
        f"{untracked} WHERE id = ? AND state = 'pending'",
        [(at, i) for i in reply_ids],
    )


class Outbox:
    """The delivery side of the ``replies`` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dead_checked: float | None = None  # monotonic

    def queue_replies(
        self,
        replies: Sequence[ReplyRecord],
        *,
        received_id: int | None = None,
        now: datetime | None = None,
    ) -> list[int]:
        """Queue replies that no intake produced (payout decisions: ``received_id`` None), in
        one transaction; return their row ids."""
        with self._engine.transaction("could not queue replies") as tx:
            return write_replies(tx, replies, received_id=received_id, created_at=now)

    def pending_replies(
        self, limit: int = 500, *, now: datetime | None = None
    ) -> list[PendingReply]:
        """Rows due for delivery: pending, and never tried or their retry time has come."""
        return PENDING.fetch(
            self._engine,
            "FROM replies WHERE state = 'pending' AND "
            "(next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id LIMIT ?",
            (stored_moment(now), limit),
        )

    def claim_due(self, limit: int = 500, *, now: datetime | None = None) -> list[PendingReply]:
        """The due rows (as ``pending_replies``) that no other live instance has claimed,
        claimed for this one: deliver them, then record what happened. The claims of dead
        instances are voided first (at most every ``DEAD_CLAIMS_EVERY`` seconds)."""
        checked = self._dead_checked
        if checked is None or time.monotonic() - checked >= DEAD_CLAIMS_EVERY:
            self.release_dead_claims()
            self._dead_checked = time.monotonic()
        me, at = self._engine.instance, stored_moment(now)
        # Not durable: a claim lost in a power cut dies with its instance anyway.
        with self._engine.transaction("could not claim replies", durable=False) as tx:
            claimed = PENDING.read_all(
                tx.rows(
                    "UPDATE replies SET claimed_by = ?, claimed_at = ? WHERE id IN ("
                    "SELECT id FROM replies WHERE state = 'pending' AND "
                    "(next_attempt_at IS NULL OR next_attempt_at <= ?) AND "
                    "(claimed_by IS NULL OR claimed_by = ?) ORDER BY id LIMIT ? "
                    f"FOR UPDATE SKIP LOCKED) RETURNING {PENDING.select}",
                    (me, at, at, me, limit),
                )
            )
        return sorted(claimed, key=lambda reply: reply.id)

    def release_dead_claims(self) -> int:
        """Void the claims on pending rows of instances that are no longer alive; how many."""
        holders = [
            str(row[0])
            for row in self._engine.rows(
                "SELECT DISTINCT claimed_by FROM replies WHERE state = 'pending' "
                "AND claimed_by IS NOT NULL AND claimed_by <> ?",
                (self._engine.instance,),
            )
        ]
        dead = [h for h in holders if not self._engine.held(instance_lock(h))]
        if not dead:
            return 0
        with self._engine.transaction("could not release claims", durable=False) as tx:
            return tx.execute(
                f"UPDATE replies SET claimed_by = NULL WHERE state = 'pending' "
                f"AND claimed_by IN ({marks(len(dead))})",
                dead,
            )

    def release(self, reply_ids: Sequence[int]) -> None:
        """Give back this instance's claims on rows it will not deliver now (shutting down)."""
        if not reply_ids:
            return
        with self._engine.transaction("could not release claims", durable=False) as tx:
            tx.execute(
                f"UPDATE replies SET claimed_by = NULL WHERE claimed_by = ? "
                f"AND id IN ({marks(len(reply_ids))})",
                (self._engine.instance, *reply_ids),
            )

    def next_attempt_due(self) -> datetime | None:
        """The earliest retry time of a pending row waiting for one (None: none waits)."""
        found = self._engine.one(
            "SELECT MIN(next_attempt_at) FROM replies WHERE state = 'pending' "
            "AND next_attempt_at IS NOT NULL"
        )
        return None if found is None else opt_moment(found[0])

    def record_delivery(
        self,
        reply_ids: Sequence[int],
        *,
        now: datetime | None = None,
        acks_expected: bool = True,
    ) -> None:
        """Mark rows delivered (one more send; failed attempts reset). Only pending rows
        change, so a row requeued or discarded meanwhile is not touched. Without
        ``acks_expected`` (delivered where no partner acknowledges anything) a row stops
        awaiting an ack: nobody would ever settle or resend it."""
        if not reply_ids:
            return
        with self._engine.transaction("could not mark replies delivered") as tx:
            record_delivery_in(tx, reply_ids, now=now, acks_expected=acks_expected)

    def mark_delivered(self, reply_ids: Sequence[int]) -> None:
        """``record_delivery`` now, for the file outbox: a folder acknowledges nothing, so
        what it delivers does not await an ack."""
        self.record_delivery(reply_ids, acks_expected=False)

    def record_failure(
        self, reply_id: int, error: str, retry_at: datetime, *, now: datetime | None = None
    ) -> int:
        """A transient delivery failure: count it, keep the error, try again at ``retry_at``.
        Returns the attempts so far."""
        del now  # the row keeps only the retry time; accepted for a uniform signature
        with self._engine.transaction(f"could not record failure of reply {reply_id}") as tx:
            tx.execute(
                "UPDATE replies SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ?, claimed_by = NULL WHERE id = ? AND state = 'pending'",
                (error[:_ERROR_CHARS], stored_moment(retry_at), reply_id),
            )
            row = tx.one("SELECT attempts FROM replies WHERE id = ?", (reply_id,))
        return 0 if row is None else int(row[0])

    def mark_dead(self, reply_id: int, error: str, *, now: datetime | None = None) -> None:
        """A permanent failure (SMTP 5xx, no address): a dead letter for an operator."""
        del now
        with self._engine.transaction(f"could not mark reply {reply_id} dead") as tx:
            tx.execute(
                "UPDATE replies SET state = 'dead', attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = NULL, claimed_by = NULL WHERE id = ? AND state = 'pending'",
                (error[:_ERROR_CHARS], reply_id),
            )

    # --- dead letters ---------------------------------------------------------------------------

    def requeue(
        self, reply_ids: Sequence[int], *, by: str = "operator", now: datetime | None = None
    ) -> list[int]:
        """Dead letters back to pending, to be sent as soon as possible; the requeue is noted
        in ``last_error``. Returns the ids that were dead (others are left alone)."""
        note = f"requeued by {by} at {stored_moment(now)}"
        return self._from_dead(
            reply_ids,
            "state = 'pending', attempts = 0, next_attempt_at = NULL, " + _NOTE_BEFORE_ERROR,
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
        note = f"discarded by {by} at {stored_moment(now)}: {reason}"
        return self._from_dead(
            reply_ids, "state = 'discarded', next_attempt_at = NULL, " + _NOTE_BEFORE_ERROR, note
        )

    def _from_dead(self, reply_ids: Sequence[int], assignments: str, note: str) -> list[int]:
        with self._engine.transaction("could not change dead letters") as tx:
            return [
                reply_id
                for reply_id in reply_ids
                if tx.execute(
                    f"UPDATE replies SET {assignments} WHERE id = ? AND state = 'dead'",
                    (note, reply_id),
                )
            ]

    def dead_letters(self) -> list[ReplySummary]:
        """Every dead reply, oldest first."""
        return self.list_replies(state="dead", limit=None)

    # --- reading --------------------------------------------------------------------------------

    def list_replies(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        ack_state: str | None = None,
        limit: int | None = 200,
    ) -> list[ReplySummary]:
        """Replies (no bodies), oldest first, filtered by state, kind and ack state."""
        where, params = filtered(
            (("state = ?", state), ("kind = ?", kind), ("ack_state = ?", ack_state)), "id", limit
        )
        return SUMMARY.fetch(self._engine, "FROM replies " + where, params)

    def reply(self, reply_id: int) -> ReplySummary | None:
        """One reply's row without its body."""
        return SUMMARY.fetch_one(self._engine, "FROM replies WHERE id = ?", (reply_id,))

    def delivered_file(self, filename: str) -> bool:
        """True if the reply with this file name is marked delivered (or acknowledged since)."""
        found = self._engine.one(
            "SELECT 1 FROM replies WHERE filename = ? AND state = 'delivered'", (filename,)
        )
        return found is not None

    def reply_body(self, reply_id: int) -> bytes:
        """The exact bytes of a reply, as sent (and resent); ``ArchivedBytes`` if retention
        moved them."""
        found = self._engine.one(
            "SELECT body, archive_file, archive_member FROM replies WHERE id = ?", (reply_id,)
        )
        if found is None:
            raise StorageError(f"no reply {reply_id}")
        archived = archived_error(f"reply {reply_id}", found[1], found[2])
        if archived is not None:
            raise archived
        return bytes(found[0])

    def summary(self, now: datetime | None = None) -> OutboxSummary:
        """Counts per state and ack state and the oldest pending age, for metrics and health."""
        states = {
            str(s): int(n)
            for s, n in self._engine.rows("SELECT state, COUNT(*) FROM replies GROUP BY state")
        }
        acks = {
            str(s): int(n)
            for s, n in self._engine.rows(
                "SELECT ack_state, COUNT(*) FROM replies WHERE ack_state IS NOT NULL "
                "AND state != 'discarded' GROUP BY ack_state"
            )
        }
        found = self._engine.one("SELECT MIN(created_at) FROM replies WHERE state = 'pending'")
        oldest = None if found is None else opt_moment(found[0])
        age = 0.0
        if oldest is not None:
            age = max(0.0, ((now or datetime.now(UTC)) - oldest).total_seconds())
        return OutboxSummary(states=states, ack_states=acks, oldest_pending_seconds=age)
