"""The ``replies`` table, the transactional outbox: its one writer and how its rows are read.

Every message gateway sends is a row, written in the same transaction as what caused it: an
intake's decision (``intake``), replies queued by hand or by a test (``outbox``), a payout run's
decisions (``gateway.payout.sending``, on its own connection). They all write through
``write_replies``, so a row starts the same way whoever queues it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gateway.records import PendingReply, ReplyRecord, ReplySummary, StoredReply
from gateway.store.engine import Transaction
from gateway.store.rows import Columns, field, moment, opt_int, opt_moment, opt_str, stored_moment

__all__ = ["PENDING", "STORED", "SUMMARY", "write_replies"]


def write_replies(
    tx: Transaction,
    replies: Sequence[ReplyRecord],
    *,
    received_id: int | None,
    created_at: datetime | None = None,
) -> list[int]:
    """Queue ``replies`` for delivery (state pending; ack tracked when a reply awaits one),
    made by received message ``received_id`` (None: a message we start) at ``created_at``
    (default now). Returns their row ids, in order."""
    created = stored_moment(created_at)
    return [
        tx.insert(
            "INSERT INTO replies(received_id, kind, ebxml_message_id, ref_to_message_id, "
            "recipient, filename, body, created_at, state, ack_state) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?) RETURNING id",
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
        for r in replies
    ]


#: A row due for delivery, with its body.
PENDING = Columns(
    PendingReply,
    (
        field("id", int),
        field("filename"),
        field("body", bytes),
        field("recipient"),
        field("kind"),
        field("ebxml_message_id", opt_str),
        field("attempts", int),
    ),
)

#: A row without its body, for operators, metrics and the resend task.
SUMMARY = Columns(
    ReplySummary,
    (
        field("id", int),
        field("received_id", opt_int),
        field("kind"),
        field("ebxml_message_id", opt_str),
        field("ref_to_message_id", opt_str),
        field("recipient"),
        field("filename"),
        field("created_at", moment),
        field("state"),
        field("delivered_at", opt_moment),
        field("attempts", int),
        field("next_attempt_at", opt_moment),
        field("last_error", opt_str),
        field("sends", int),
        field("ack_state", opt_str),
        field("ack_received_id", opt_int),
        field("ack_at", opt_moment),
        field("expires_at", opt_moment),
        field("size", int, "COALESCE(body_size, length(body))"),  # body_size: archived
    ),
)

#: A reply as first sent for a message, to send again when the message comes again.
STORED = Columns(
    StoredReply,
    (
        field("kind"),
        field("recipient"),
        field("filename"),
        field("body", bytes),
        field("ebxml_message_id", opt_str),
        field("ref_to_message_id", opt_str),
    ),
)
