"""The outbox in the store: delivery states, dead letters, ack tracking, resends, signals.

Everything runs on a real SQLite store with an injected clock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import MessageHeader, Party, PartyId, Severity
from gateway.ebxml.signals import ErrorDetail, build_acknowledgment, build_message_error
from gateway.outbox.files import FileOutbox
from gateway.outbox.reliability import AckTracker, RetryPolicy, TickResult
from gateway.outbox.signals import match_signal
from gateway.records import Outcome, ReceivedRecord, ReplyRecord
from gateway.store import Store

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
US = Party((PartyId("79768", "HER"),), "KontrollUtbetaler")
THEM = Party((PartyId("8141253", "HER"),), "Behandler")
POLICY = RetryPolicy(retries=2, interval=timedelta(hours=1), time_to_live=timedelta(hours=10))


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def reply(n: int, *, awaits_ack: bool = False, kind: str = "apprec") -> ReplyRecord:
    return ReplyRecord(
        kind=kind,
        recipient="lege@example.test",
        filename=f"r{n}.eml",
        body=f"body {n}".encode(),
        ebxml_message_id=f"msg-{n}@kuhr.test",
        awaits_ack=awaits_ack,
    )


def state(store: Store, reply_id: int) -> tuple[str, str | None, int, int]:
    r = store.outbox.reply(reply_id)
    assert r is not None
    return r.state, r.ack_state, r.sends, r.attempts


# --- delivery states ---------------------------------------------------------------------------


def test_due_rows_exclude_those_waiting_for_a_retry(store: Store) -> None:
    a, b = store.outbox.queue_replies([reply(1), reply(2)], now=T0)
    pending = store.outbox.pending_replies(now=T0)
    assert [(p.id, p.recipient, p.kind, p.ebxml_message_id) for p in pending] == [
        (a, "lege@example.test", "apprec", "msg-1@kuhr.test"),
        (b, "lege@example.test", "apprec", "msg-2@kuhr.test"),
    ]
    assert store.outbox.record_failure(a, "451 try later", T0 + timedelta(minutes=5)) == 1
    assert [p.id for p in store.outbox.pending_replies(now=T0)] == [b]
    assert store.outbox.next_attempt_due() == T0 + timedelta(minutes=5)
    due_later = store.outbox.pending_replies(now=T0 + timedelta(minutes=5))
    assert [(p.id, p.attempts) for p in due_later] == [(a, 1), (b, 0)]


def test_delivery_counts_a_send_and_resets_attempts(store: Store) -> None:
    (a,) = store.outbox.queue_replies([reply(1)], now=T0)
    store.outbox.record_failure(a, "connection refused", T0)
    store.outbox.record_failure(a, "connection refused", T0)
    assert state(store, a) == ("pending", None, 0, 2)
    store.outbox.record_delivery([a], now=T0)
    assert state(store, a) == ("delivered", None, 1, 0)
    detail = store.outbox.reply(a)
    assert detail is not None and detail.delivered_at == T0 and detail.next_attempt_at is None
    store.outbox.record_delivery([a], now=T0)  # not pending any more: nothing changes
    assert state(store, a) == ("delivered", None, 1, 0)


def test_dead_letter_requeue_and_discard_are_audited(store: Store) -> None:
    a, b, c = store.outbox.queue_replies([reply(1), reply(2), reply(3)], now=T0)
    store.outbox.mark_dead(a, "SMTP 550 no such user")
    store.outbox.mark_dead(b, "SMTP 554 rejected")
    assert [r.id for r in store.outbox.dead_letters()] == [a, b]
    assert [p.id for p in store.outbox.pending_replies(now=T0)] == [c]

    assert store.outbox.requeue([a, c], by="kari", now=T0) == [a]  # c was not dead: left alone
    r = store.outbox.reply(a)
    assert r is not None and r.state == "pending" and r.attempts == 0
    assert r.last_error is not None
    assert r.last_error.startswith("requeued by kari at 2025-03-03T08:00:00")
    assert "before: SMTP 550 no such user" in r.last_error

    assert store.outbox.discard([b, a], "wrong partner, sent by hand", by="kari", now=T0) == [b]
    d = store.outbox.reply(b)
    assert d is not None and d.state == "discarded"
    assert d.last_error is not None and "wrong partner, sent by hand" in d.last_error
    assert "SMTP 554 rejected" in d.last_error
    assert store.outbox.requeue([b]) == []  # discarded is final
    summary = store.outbox.summary(now=T0 + timedelta(seconds=90))
    assert summary.states == {"pending": 2, "discarded": 1}
    assert summary.oldest_pending_seconds == 90.0


def test_file_outbox_still_delivers_and_counts_sends(store: Store, tmp_path: Path) -> None:
    (a,) = store.outbox.queue_replies([reply(1)])
    assert FileOutbox(store, tmp_path / "out").flush() == 1
    assert (tmp_path / "out" / "r1.eml").read_bytes() == b"body 1"
    assert state(store, a) == ("delivered", None, 1, 0)


def test_file_outbox_deliveries_await_no_acknowledgment(store: Store, tmp_path: Path) -> None:
    # An AppRec asks for an ack; a folder never sends one, and nothing resends from it.
    (a,) = store.outbox.queue_replies([reply(1, awaits_ack=True)])
    assert [r.id for r in store.acks.awaiting_acks()] == [a]  # until it is delivered
    assert FileOutbox(store, tmp_path / "out").flush() == 1
    assert store.acks.awaiting_acks() == []
    assert store.outbox.summary().awaiting_ack == 0
    assert state(store, a) == ("delivered", None, 1, 0)


async def test_file_outbox_service_delivers_what_was_left_then_writes_on_notify(
    store: Store, tmp_path: Path
) -> None:
    (a,) = store.outbox.queue_replies([reply(1)])
    outbox = FileOutbox(store, tmp_path / "out")
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    for _ in range(200):
        if state(store, a)[0] == "delivered":
            break
        await asyncio.sleep(0.01)
    assert (tmp_path / "out" / "r1.eml").read_bytes() == b"body 1"
    (b,) = store.outbox.queue_replies([reply(2)])
    await asyncio.to_thread(outbox.notify)  # as the intake's worker thread does
    assert state(store, b)[0] == "delivered"  # written before notify returned
    stop.set()
    await asyncio.wait_for(task, 5)


# --- acknowledgment tracking -----------------------------------------------------------------


def tracker(store: Store, clock: Clock, woken: list[int] | None = None) -> AckTracker:
    def wake() -> None:
        if woken is not None:
            woken.append(1)

    return AckTracker(store, lambda _recipient: POLICY, clock=clock, on_resend=wake)


def test_unacknowledged_reply_is_resent_retries_times_then_expires(store: Store) -> None:
    clock = Clock()
    woken: list[int] = []
    acks = tracker(store, clock, woken)
    (a,) = store.outbox.queue_replies([reply(1, awaits_ack=True)], now=T0)
    assert acks.tick().planned == ()  # not delivered yet: nothing to plan
    store.outbox.record_delivery([a], now=T0)

    assert acks.tick().planned == (a,)
    r = store.outbox.reply(a)
    assert r is not None and r.next_attempt_at == T0 + timedelta(hours=1)
    assert r.expires_at == T0 + timedelta(hours=10)

    clock.advance(minutes=59)
    assert acks.tick() == TickResult((), (), ())
    clock.advance(minutes=1)
    assert acks.tick().resent == (a,)
    assert woken == [1]
    assert state(store, a) == ("pending", "awaiting", 1, 0)
    assert store.outbox.reply_body(a) == b"body 1"  # the same bytes, the same MessageId

    store.outbox.record_delivery([a], now=clock.now)  # resend 1 (send 2)
    acks.tick()
    clock.advance(hours=1)
    assert acks.tick().resent == (a,)
    store.outbox.record_delivery([a], now=clock.now)  # resend 2 (send 3): retries used up
    planned = acks.tick()
    assert planned.planned == (a,) and planned.resent == ()
    r = store.outbox.reply(a)
    assert r is not None and r.expires_at == clock.now + timedelta(hours=1)

    clock.advance(minutes=59)
    assert acks.tick().expired == ()
    clock.advance(minutes=1)
    assert acks.tick().expired == (a,)
    assert state(store, a) == ("delivered", "expired", 3, 0)
    assert store.acks.awaiting_acks() == []
    assert [r.id for r in store.outbox.list_replies(ack_state="expired")] == [a]


def test_time_to_live_ends_resends_early(store: Store) -> None:
    clock = Clock()
    short = RetryPolicy(retries=5, interval=timedelta(hours=4), time_to_live=timedelta(hours=6))
    acks = AckTracker(store, lambda _r: short, clock=clock)
    (a,) = store.outbox.queue_replies([reply(1, awaits_ack=True)], now=T0)
    store.outbox.record_delivery([a], now=T0)
    acks.tick()
    clock.advance(hours=4)
    assert acks.tick().resent == (a,)
    # The resend is still queued (the server is down) when the time to live runs out:
    clock.advance(hours=2)
    assert acks.tick().expired == (a,)
    assert state(store, a) == ("delivered", "expired", 1, 0)
    assert store.outbox.pending_replies(now=clock.now) == []


# --- signals ---------------------------------------------------------------------------------


def our_header(message_id: str) -> MessageHeader:
    return MessageHeader(
        from_party=US,
        to_party=THEM,
        cpa_id="nav:qass:35065",
        conversation_id="conv-1",
        service="BehandlerKrav",
        service_type="string",
        action="Svarmelding",
        message_id=message_id,
        timestamp=T0,
    )


def partner_ack(message_id: str) -> bytes:
    return build_acknowledgment(our_header(message_id), message_id="ack-1@lege.test", timestamp=T0)


def partner_error(message_id: str, severity: Severity = "Error") -> bytes:
    detail = ErrorDetail("SecurityFailure", severity, None, "Signaturen er ugyldig")
    return build_message_error(
        our_header(message_id),
        [detail],
        message_id="err-1@lege.test",
        timestamp=T0,
        our_party=THEM,
        their_party=US,
    )


def test_acknowledgment_settles_the_reply_and_stops_resends(store: Store) -> None:
    clock = Clock()
    acks = tracker(store, clock)
    a, b = store.outbox.queue_replies(
        [reply(1, awaits_ack=True), reply(2, awaits_ack=True)], now=T0
    )
    store.outbox.record_delivery([a, b], now=T0)
    acks.tick()
    clock.advance(hours=1)
    assert acks.tick().resent == (a, b)  # both back to pending for a resend

    raw = partner_ack("msg-1@kuhr.test")
    signal_id = store.intake.commit(
        ReceivedRecord(clock.now, "spool", "ack.eml", raw, "0" * 64, Outcome.SIGNAL), None, None, ()
    )
    ack = parse_envelope(raw)
    matches = match_signal(store, ack, signal_id, now=clock.now)
    assert [(m.reply_id, m.previous_ack_state, m.ack_state, m.changed) for m in matches] == [
        (a, "awaiting", "acknowledged", True)
    ]
    # Acknowledged while its resend was queued: it is not sent again.
    assert [p.id for p in store.outbox.pending_replies(now=clock.now)] == [b]
    r = store.outbox.reply(a)
    assert r is not None and (r.state, r.ack_state, r.ack_at) == (
        "delivered",
        "acknowledged",
        clock.now,
    )
    assert r.ack_received_id == signal_id
    assert [x.id for x in store.messages.replies_of(signal_id)] == [a]
    again = match_signal(store, ack, None)
    assert [(m.ack_state, m.changed) for m in again] == [("acknowledged", False)]
    assert [r.id for r in store.acks.awaiting_acks()] == [b]


def test_message_error_marks_the_reply_and_warnings_do_not(store: Store) -> None:
    (a,) = store.outbox.queue_replies([reply(1, awaits_ack=True)], now=T0)
    store.outbox.record_delivery([a], now=T0)
    warning = parse_envelope(partner_error("msg-1@kuhr.test", "Warning"))
    assert match_signal(store, warning, None) == []
    assert state(store, a) == ("delivered", "awaiting", 1, 0)
    error = parse_envelope(partner_error("msg-1@kuhr.test"))
    (match,) = match_signal(store, error, None)
    assert (match.reply_id, match.ack_state) == (a, "error")
    assert state(store, a) == ("delivered", "error", 1, 0)


def test_late_ack_settles_an_expired_reply_and_unknown_refs_match_nothing(store: Store) -> None:
    (a,) = store.outbox.queue_replies([reply(1, awaits_ack=True)], now=T0)
    store.outbox.record_delivery([a], now=T0)
    store.acks.plan_resend(a, T0 + timedelta(hours=1), T0 + timedelta(hours=1))
    assert [r.id for r in store.acks.expire(T0 + timedelta(hours=2))] == [a]
    (match,) = match_signal(store, parse_envelope(partner_ack("msg-1@kuhr.test")), None)
    assert (match.previous_ack_state, match.ack_state) == ("expired", "acknowledged")
    assert match_signal(store, parse_envelope(partner_ack("not-ours@x.test")), None) == []
