"""The SMTP outbox: delivers due ``replies`` rows over reused aiosmtplib connections.

Rows are committed first (in the transaction of the decision that made them); this sender only
claims due rows (``store.outbox.claim_due``: rows another live instance on the same database
has claimed are not sent here), sends them, and records what happened:

- **sent** (250): delivered; one more send counted (``store.outbox.record_delivery``, one commit per
  pass of up to ``BATCH`` rows, so a crash re-sends at most one pass: at-least-once, and ebXML
  receivers drop a repeated MessageId);
- **transient** (4xx, connection refused or dropped, timeouts): the row is tried again at
  ``next_attempt_at`` (exponential backoff with jitter); when the *server* is unreachable the whole
  sender pauses, with its own backoff, instead of burning through every row;
- **permanent** (5xx, an unresolvable recipient, ``max_attempts`` used up): the row becomes a dead
  letter with the reason in ``last_error``, for ``gateway outbox dead / requeue / discard``.

Connections (1–4) are opened on demand, reused for every message, reopened when dropped, and
closed (QUIT) after ``idle_close`` seconds without work and on shutdown. ``notify()`` wakes the
sender at once when the daemon commits new rows; otherwise it polls every ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from gateway.clock import utc_now
from gateway.errors import StorageError
from gateway.logs import get_logger
from gateway.outbox.smtp.config import SmtpConfig
from gateway.outbox.smtp.session import Connection, SmtpFailure
from gateway.records import PendingReply
from gateway.store import Store

log = get_logger("outbox.smtp")

#: Rows fetched per pass, per connection.
BATCH = 50

#: Resolves a row's recipient (a mail address, or 'HER:<id>') to a mail address; None when it
#: cannot be (given by the daemon: the partner registry).
Resolver = Callable[[str], "str | None"]


@dataclass(slots=True)
class SenderStats:
    """Counters for logs and tests."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0
    pauses: int = 0
    passes: int = 0


class SmtpOutbox:
    """Delivers due rows of ``store`` to an SMTP server until ``run``'s stop event is set
    (an ``Outbox``, ``gateway.transports``)."""

    name = "smtp"

    def __init__(
        self,
        store: Store,
        config: SmtpConfig,
        resolve: Resolver,
        *,
        clock: Callable[[], datetime] = utc_now,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.config = config
        self.resolve = resolve
        self.clock = clock
        self.jitter = jitter
        self.stats = SenderStats()
        config.password()  # a missing password file or variable stops the start, not a send
        self._connections = [Connection(config, n + 1) for n in range(config.connections)]
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # while ``run`` runs
        self._paused_until = 0.0  # monotonic
        self._down = 0  # consecutive connection-level failures

    def notify(self) -> None:
        """New rows were committed: deliver them now rather than at the next poll. Callable
        from any thread (the pipeline's worker commits the rows)."""
        loop = self._loop
        if loop is None or _running_loop() is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    @property
    def connections_opened(self) -> int:
        """SMTP sessions opened so far (reuse keeps this small)."""
        return sum(c.opened for c in self._connections)

    @property
    def paused(self) -> bool:
        """The server was unreachable; the sender waits before trying again."""
        return time.monotonic() < self._paused_until

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; a send in progress is finished, the rest stay
        pending. Connections are closed on the way out."""
        self._loop = asyncio.get_running_loop()
        log.info(
            "smtp_outbox_started",
            host=self.config.host,
            port=self.config.port,
            security=self.config.security,
            connections=self.config.connections,
        )
        try:
            while not stop.is_set():
                try:
                    handled = await self.deliver_due(stop)
                except StorageError:
                    # The database, not the mail server: keep going, the rows are still there.
                    log.exception("smtp_outbox_storage_error")
                    handled = 0
                if stop.is_set():
                    break
                if handled and not self.paused:
                    continue
                await self._wait(stop)
        finally:
            self._loop = None
            await self.close()
            log.info(
                "smtp_outbox_stopped",
                delivered=self.stats.delivered,
                retried=self.stats.retried,
                dead=self.stats.dead,
            )

    async def close(self) -> None:
        """Close every connection."""
        for connection in self._connections:
            await connection.close()

    async def deliver_due(self, stop: asyncio.Event | None = None) -> int:
        """One pass: send the rows due now over the connections; return how many were tried."""
        self._wake.clear()
        if self.paused:
            return 0
        rows = await asyncio.to_thread(
            self.store.outbox.claim_due, BATCH * len(self._connections), now=self.clock()
        )
        if not rows:
            return 0
        self.stats.passes += 1
        queue: list[PendingReply] = list(reversed(rows))
        delivered: list[int] = []
        tried = 0

        async def work(connection: Connection) -> None:
            nonlocal tried
            while queue and not self.paused and not (stop is not None and stop.is_set()):
                row = queue.pop()
                tried += 1
                if await self._deliver_one(connection, row):
                    delivered.append(row.id)

        try:
            async with asyncio.TaskGroup() as group:
                # No more sessions than rows: one message needs one connection.
                for connection in self._connections[: min(len(rows), len(self._connections))]:
                    group.create_task(work(connection))
        finally:
            # Even when cancelled: what was sent is recorded, so it is not sent again.
            if delivered:
                record = self.store.outbox.record_delivery
                await asyncio.shield(asyncio.to_thread(record, delivered))
                self.stats.delivered += len(delivered)
            if queue:  # stopped or paused: another instance may send the rest at once
                release = self.store.outbox.release
                await asyncio.shield(asyncio.to_thread(release, [r.id for r in queue]))
        return tried

    async def _deliver_one(self, connection: Connection, row: PendingReply) -> bool:
        with structlog.contextvars.bound_contextvars(reply_id=row.id, kind=row.kind):
            address = self.resolve(row.recipient)
            if address is None:
                reason = f"no mail address for recipient {row.recipient!r} (not in any CPA)"
                await self._dead(row, reason)
                return False
            try:
                await connection.send(address, _as_mail(row, self.config.from_address, address))
            except SmtpFailure as failure:
                await self._failed(row, failure)
                return False
            self._down = 0
            return True

    async def _dead(self, row: PendingReply, reason: str) -> None:
        log.error("reply_dead", error=reason, ebxml_message_id=row.ebxml_message_id)
        await asyncio.to_thread(self.store.outbox.mark_dead, row.id, reason)
        self.stats.dead += 1

    async def _failed(self, row: PendingReply, failure: SmtpFailure) -> None:
        if failure.permanent:
            await self._dead(row, str(failure))
            return
        attempts = row.attempts + 1
        if self.config.max_attempts and attempts >= self.config.max_attempts:
            await self._dead(row, f"gave up after {attempts} attempts; last: {failure}")
            return
        delay = self._backoff(attempts)
        retry_at = self.clock() + timedelta(seconds=delay)
        await asyncio.to_thread(self.store.outbox.record_failure, row.id, str(failure), retry_at)
        self.stats.retried += 1
        log.warning("reply_retry", error=str(failure), attempts=attempts, retry_in=round(delay, 3))
        if failure.connection:
            self._down += 1
            pause = self._backoff(self._down)
            self._paused_until = time.monotonic() + pause
            self.stats.pauses += 1
            log.warning("smtp_server_unreachable", error=str(failure), pause=round(pause, 3))

    def _backoff(self, failures: int) -> float:
        """Exponential backoff with jitter: base·2^(n-1), at most ``backoff_max``, times a
        random factor in [0.5, 1) so senders that failed together do not retry together."""
        raw = min(self.config.backoff_max, self.config.backoff_base * 2.0 ** min(failures - 1, 30))
        return raw * (0.5 + 0.5 * self.jitter())

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until new rows are notified, a retry is due, the pause is over, or the poll."""
        if self.paused:
            # A notify must not cut the pause short: the server is down.
            timeout = self._paused_until - time.monotonic()
            waits = [stop.wait()]
        else:
            timeout = self.config.poll_interval
            due = await asyncio.to_thread(self.store.outbox.next_attempt_due)
            if due is not None:
                timeout = min(timeout, max(0.0, (due - self.clock()).total_seconds()))
            waits = [stop.wait(), self._wake.wait()]
            await self._close_idle()
        tasks = [asyncio.ensure_future(w) for w in waits]
        try:
            await asyncio.wait(
                tasks, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _close_idle(self) -> None:
        now = time.monotonic()
        for connection in self._connections:
            idle = now - connection.last_used
            if connection.client is not None and idle > self.config.idle_close:
                await connection.close()


def _as_mail(row: PendingReply, sender: str, recipient: str) -> bytes:
    """The row's bytes as a mail message. Replies to ebXML messages are whole MIME messages
    already; a bare XML AppRec (a MsgHead that came without ebXML) gets a minimal header."""
    if not row.body.lstrip().startswith(b"<"):
        return row.body
    headers = (
        f"From: {sender}\r\nTo: {recipient}\r\nSubject: {row.kind}\r\n"
        f"Date: {email.utils.format_datetime(utc_now())}\r\n"
        f"Message-ID: <{row.filename}.{row.id}@{sender.rsplit('@', 1)[-1]}>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/xml; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return headers.encode("utf-8") + row.body


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # not in the event loop's thread
        return None
