"""ebMS reliable messaging for what we send with AckRequested (AppRecs, payout decisions).

A delivered reply whose ``ack_state`` is 'awaiting' waits for the partner's Acknowledgment
(or MessageError; ``gateway.outbox.signals``). Each ``tick``:

1. **plan** every reply just delivered: resend at ``delivered_at + interval``; stop waiting at
   ``created_at + time_to_live`` (the ebXML TimeToLive runs from the message's Timestamp), or,
   once ``retries`` resends are used up, one interval after the last send;
2. **expire** replies whose time is up: ``ack_state`` 'expired', logged as an error for an
   operator (``gateway outbox awaiting-ack`` and the metrics show them);
3. **resend** replies whose resend time has come: back to 'pending' with the *same bytes* (ebMS
   resends the identical message, same MessageId, so the receiver drops it as a duplicate if
   the first copy did arrive), and the sender is woken.

The policy per recipient comes from ``policy_for`` (the CPA's Retries/RetryInterval; a default
from config); the clock is injectable for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.clock import utc_now
from gateway.errors import StorageError
from gateway.logs import get_logger
from gateway.store import Store

log = get_logger("outbox.reliability")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Resend an unacknowledged message up to ``retries`` times, ``interval`` apart, and not
    after ``time_to_live`` from when it was made."""

    retries: int
    interval: timedelta
    time_to_live: timedelta

    def __post_init__(self) -> None:
        if self.retries < 0 or self.interval <= timedelta(0) or self.time_to_live <= timedelta(0):
            raise ValueError(f"invalid retry policy {self!r}")


#: NAV/Helfo's CPA values (Retries 4, RetryInterval PT720M, PersistDuration P4D).
DEFAULT_POLICY = RetryPolicy(
    retries=4, interval=timedelta(hours=12), time_to_live=timedelta(days=4)
)

PolicyFor = Callable[[str], RetryPolicy]


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one ``tick`` did (reply ids)."""

    planned: tuple[int, ...]
    expired: tuple[int, ...]
    resent: tuple[int, ...]


class AckTracker:
    """Plans, expires and resends replies awaiting an ebXML Acknowledgment."""

    name = "acks"

    def __init__(
        self,
        store: Store,
        policy_for: PolicyFor = lambda _recipient: DEFAULT_POLICY,
        *,
        clock: Callable[[], datetime] = utc_now,
        on_resend: Callable[[], None] | None = None,
        interval: float = 30.0,
    ) -> None:
        self.store = store
        self.policy_for = policy_for
        self.clock = clock
        self.on_resend = on_resend  # e.g. SmtpOutbox.notify
        self.interval = interval

    def tick(self) -> TickResult:
        """Plan, expire and resend once (blocking: the store is synchronous)."""
        now = self.clock()
        planned = self._plan()
        expired = self.store.acks.expire(now)
        for reply in expired:
            log.error(
                "ack_expired",
                reply_id=reply.id,
                kind=reply.kind,
                ebxml_message_id=reply.ebxml_message_id,
                recipient=reply.recipient,
                sends=reply.sends,
                hint="no Acknowledgment from the partner: see `gateway outbox awaiting-ack`",
            )
        due = self.store.acks.due_for_resend(now)
        resent = self.store.acks.schedule_resend([r.id for r in due])
        for reply in due:
            if reply.id in resent:
                log.warning(
                    "ack_missing_resending",
                    reply_id=reply.id,
                    kind=reply.kind,
                    ebxml_message_id=reply.ebxml_message_id,
                    sends=reply.sends,
                )
        if resent and self.on_resend is not None:
            self.on_resend()
        return TickResult(tuple(planned), tuple(r.id for r in expired), tuple(resent))

    def _plan(self) -> list[int]:
        planned: list[int] = []
        for reply in self.store.acks.unplanned_acks():
            policy = self.policy_for(reply.recipient)
            last_send = reply.delivered_at or reply.created_at
            resend_at = last_send + policy.interval
            expires_at = reply.created_at + policy.time_to_live
            if reply.sends > policy.retries:
                # The first send and every resend are used up: wait one more interval.
                expires_at = min(expires_at, resend_at)
            self.store.acks.plan_resend(reply.id, resend_at, expires_at)
            planned.append(reply.id)
        return planned

    async def run(self, stop: asyncio.Event) -> None:
        """``tick`` every ``interval`` seconds until ``stop`` is set; a storage error is
        logged and tried again at the next tick."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.tick)
            except StorageError:
                log.exception("ack_tracking_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
