"""IMAP intake: poll a configured mailbox (aioimaplib) and hand each mail to the intake.

For every mailbox one ``MailboxPoller`` runs on its own: connect (TLS, STARTTLS or plain), log
in, select the intake folder, read its UIDVALIDITY, then in passes

1. ``UID SEARCH ALL``; in chunks of ``batch_size`` UIDs: ``UID FETCH (UID RFC822.SIZE)``, then
   ``UID FETCH (UID BODY.PEEK[])`` in sub-batches of at most ``MAX_BATCH_BYTES``;
2. per mail, the intake (the daemon: pipeline + commit), which returns only once the mail and
   everything it produced are committed, then a row in the mail tracker;
3. per batch, the committed mails leave the folder: ``UID MOVE`` to the processed folder (or
   COPY + STORE \\Deleted + EXPUNGE where MOVE is not offered), or STORE \\Deleted + EXPUNGE
   with ``after = "expunge"``.

A mail is thus removed only after it is committed. A crash in between leaves it in the folder:
it is fetched again, the tracker (or, failing that, the daemon's ``source_ref`` check) knows it,
and only the move is done. An intake that raises leaves the mail where it is, to be tried again
after ``poll_interval``. Between passes the poller IDLEs where the server offers it (woken by the
server on new mail, re-checking every ``idle_timeout``), else sleeps ``poll_interval``.

Any connection failure ends the session; the poller reconnects with exponential backoff (capped)
and never raises: one broken mailbox never stops the others or the daemon.

Several instances on one database poll each mailbox one at a time: a poller first takes the
lock ``imap:<mailbox>`` on the store's engine (``Engine.try_lock``: a PostgreSQL advisory lock
or, on SQLite, a lock file, both released when the holder's process dies). The others try again
every ``lease_check`` seconds, so a mailbox whose holder died is taken over within that time
(plus, on PostgreSQL, the server's notice of a vanished client: TCP keepalives, about 25 s at
worst; at once after a plain process death). The holder checks as often that it still holds
the lock (its connection to the database may have been lost) and stops polling if not. An
instance that already holds k mailboxes waits k × ``lease_check`` seconds (at most
``MAX_POLITE_WAIT``) before it takes another free one (``MailboxLeases``), so instances that
start together, or survive a dead one, share the mailboxes and both cores of each machine.

Each poller is one ``Inbox`` service (``gateway.transports``) named ``imap:<mailbox>``; the
connection is ``gateway.inbox.imap.session``, the replies' parsing ``...imap.protocol``.

aioimaplib 2.0.3 raises ``RecursionError`` on a single reply of ~1,000 lines (upstream #118):
every command here touches at most ``MAX_BATCH`` messages, so no reply comes near that.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from typing import Any

import structlog

from gateway.errors import ConfigurationError, StorageError, TransportError
from gateway.inbox.imap.config import MailboxConfig
from gateway.inbox.imap.protocol import batches_by_bytes, message_id_of
from gateway.inbox.imap.session import Session
from gateway.inbox.imap.tracking import MailTracker
from gateway.logs import get_logger
from gateway.transports import Intake

log = get_logger("imap")

#: Seconds between attempts to take a mailbox another instance holds, and between the holder's
#: checks that it still holds it.
LEASE_CHECK = 5.0
#: The longest an instance that holds mailboxes already waits before taking a free one.
MAX_POLITE_WAIT = 15.0


class MailboxLeases:
    """The mailboxes this instance holds, shared by its pollers (one at a time takes one)."""

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.taking = asyncio.Lock()


class MailboxPoller:
    """Takes mails from one mailbox into the intake until stopped; never raises."""

    def __init__(
        self,
        config: MailboxConfig,
        intake: Intake,
        tracker: MailTracker,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
        lease_check: float = LEASE_CHECK,
        leases: MailboxLeases | None = None,
    ) -> None:
        self.config = config
        self.intake = intake
        self.tracker = tracker
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.lease_check = lease_check
        self.leases = leases or MailboxLeases()
        #: Mails committed (and removed) by this poller, and intake failures: for progress/tests.
        self.committed = 0
        self.failures = 0
        self.connections = 0
        if config.plaintext_to_remote_host:
            self.log.warning(
                "imap_plaintext_to_remote_host",
                host=config.host,
                hint="the password crosses the network unencrypted; use tls or starttls",
            )

    @property
    def name(self) -> str:
        """The service's name: ``imap:<mailbox>``."""
        return self.config.source

    @property
    def log(self) -> Any:
        """The module logger with this mailbox's name (bound late: logging may be set up later)."""
        return log.bind(imap_mailbox=self.config.name)

    @property
    def lease(self) -> str:
        """The lock that makes this instance the mailbox's one poller."""
        return f"imap:{self.config.name}"

    async def run(self, stop: asyncio.Event) -> None:
        """Poll while this instance holds the mailbox's lease, until ``stop`` is set."""
        engine = self.tracker.engine
        waiting = patient = False
        while not stop.is_set():
            taken = await self._take_lease(patient)
            if taken is None:  # leave a free mailbox to an instance that has none, if any
                polite = min(MAX_POLITE_WAIT, self.lease_check * len(self.leases.held))
                await _wait(stop, polite * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
                patient = True
                continue
            patient = False
            if not taken:
                if not waiting:
                    self.log.info("imap_mailbox_held_elsewhere", retry_every=self.lease_check)
                    waiting = True
                await _wait(stop, self.lease_check)
                continue
            waiting = False
            self.log.info("imap_mailbox_taken", instance=engine.instance)
            held = asyncio.Event()  # set when stopping, or when the lease is lost
            watcher = asyncio.create_task(self._watch_lease(stop, held))
            try:
                await self._poll(held)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                self.leases.held.discard(self.lease)
                with contextlib.suppress(StorageError):
                    await asyncio.to_thread(engine.unlock, self.lease)
        self.log.info("imap_stopped", committed=self.committed)

    async def _take_lease(self, patient: bool) -> bool | None:
        """Try to take this mailbox's lease (one poller of the instance at a time); None when
        the instance holds other mailboxes and this poller has not waited its turn yet."""
        async with self.leases.taking:
            if self.leases.held and not patient:
                return None
            try:
                taken = await asyncio.to_thread(self.tracker.engine.try_lock, self.lease)
            except StorageError as exc:
                self.log.warning("imap_lease_failed", error=str(exc), retry_in=self.lease_check)
                return False
            if taken:
                self.leases.held.add(self.lease)
            return taken

    async def _watch_lease(self, stop: asyncio.Event, held: asyncio.Event) -> None:
        """Set ``held`` when ``stop`` is set or this instance no longer holds the lease."""
        while not stop.is_set():
            await _wait(stop, self.lease_check)
            if stop.is_set():
                break
            try:
                still = await asyncio.to_thread(self.tracker.engine.holds, self.lease)
            except StorageError:
                still = False
            if not still:
                self.log.warning("imap_mailbox_lease_lost", action="stopping; will try again")
                break
        held.set()

    async def _poll(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; reconnect with exponential backoff on any failure."""
        c = self.config
        delay = self.backoff_initial
        attempt = 0
        while not stop.is_set():
            session = Session(c)
            graceful = False
            try:
                uidvalidity = await self._connect(session)
                attempt, delay = 0, self.backoff_initial
                await self._serve(session, uidvalidity, stop)
                graceful = True
            except asyncio.CancelledError:
                await session.close(graceful=False)
                raise
            except (TransportError, StorageError, ConfigurationError) as exc:
                attempt += 1
                self.log.warning(
                    "imap_mailbox_failed",
                    error=str(exc),
                    kind=type(exc).__name__,
                    attempt=attempt,
                    retry_in=round(delay, 2),
                )
            except Exception as exc:
                # A bug of ours must not stop this mailbox for good, or the others.
                attempt += 1
                self.log.exception(
                    "imap_poller_error",
                    error=f"{type(exc).__name__}: {exc}",
                    attempt=attempt,
                    retry_in=round(delay, 2),
                )
            await session.close(graceful=graceful)
            if stop.is_set():
                break
            await _wait(stop, delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
            delay = min(delay * 2, self.backoff_max)

    async def _connect(self, session: Session) -> int:
        c = self.config
        await session.open()
        uidvalidity = await session.select(c.folder)
        previous = await asyncio.to_thread(self.tracker.check_uidvalidity, c.name, uidvalidity)
        if previous is not None:
            self.log.warning(
                "imap_uidvalidity_changed",
                folder=c.folder,
                previous=previous,
                uidvalidity=uidvalidity,
                action="re-scanning the folder; mails seen before are recognised by their bytes",
            )
        if c.after == "move":
            await session.ensure_folder(c.processed_folder)
        self.connections += 1
        self.log.info(
            "imap_connected",
            host=c.host,
            port=c.port,
            security=c.security,
            folder=c.folder,
            uidvalidity=uidvalidity,
            idle=c.idle and session.has("IDLE"),
            move=session.has("MOVE"),
        )
        return uidvalidity

    async def _serve(self, session: Session, uidvalidity: int, stop: asyncio.Event) -> None:
        c = self.config
        use_idle = c.idle and session.has("IDLE")
        if c.idle and not use_idle:
            self.log.info("imap_idle_not_offered", polling_every=c.poll_interval)
        while not stop.is_set():
            handled, failed = await self._pass(session, uidvalidity, stop)
            if stop.is_set():
                return
            if handled and not failed:
                continue  # more may have arrived meanwhile
            if failed or not use_idle:
                await _wait(stop, c.poll_interval)
            else:
                await session.idle(stop)

    async def _pass(
        self, session: Session, uidvalidity: int, stop: asyncio.Event
    ) -> tuple[int, int]:
        """Take every mail now in the folder; return (handled, failed)."""
        uids = await session.search_all()
        handled = failed = 0
        size = self.config.batch_size
        for start in range(0, len(uids), size):
            if stop.is_set():
                break
            chunk = uids[start : start + size]
            sizes = await session.sizes(chunk)
            for batch in batches_by_bytes(chunk, sizes):
                if stop.is_set():
                    break
                h, f = await self._batch(session, uidvalidity, batch, stop)
                handled += h
                failed += f
        return handled, failed

    async def _batch(
        self, session: Session, uidvalidity: int, uids: list[int], stop: asyncio.Event
    ) -> tuple[int, int]:
        bodies = await session.fetch(uids)
        done_uids: list[int] = []
        done_ids: list[int] = []
        failed = 0
        for uid in uids:
            if stop.is_set():
                break  # what is committed so far is still removed below
            raw = bodies.get(uid)
            if raw is None:
                self.log.warning("imap_mail_not_fetched", uid=uid)
                continue
            try:
                tracked_id = await self._take(uidvalidity, uid, raw)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Not committed: the mail stays in the folder and is tried again later.
                failed += 1
                self.failures += 1
                self.log.error(
                    "imap_intake_failed",
                    uid=uid,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in=self.config.poll_interval,
                )
                continue
            done_uids.append(uid)
            if tracked_id is not None:
                done_ids.append(tracked_id)
        if done_uids:
            how = await session.remove(done_uids)
            self.committed += len(done_uids)
            try:
                await asyncio.to_thread(self.tracker.mark_moved, done_ids)
            except StorageError as exc:
                self.log.error("imap_tracker_not_updated", error=str(exc), mails=len(done_ids))
            self.log.info("imap_batch_done", mails=len(done_uids), removed=how, failed=failed)
        return len(done_uids), failed

    async def _take(self, uidvalidity: int, uid: int, raw: bytes) -> int | None:
        """Commit one mail through the intake (unless it already is); return its tracker id."""
        c, tracker = self.config, self.tracker
        sha256 = hashlib.sha256(raw).hexdigest()
        message_id = message_id_of(raw)
        known = await asyncio.to_thread(tracker.lookup, c.name, uidvalidity, uid)
        for mail in known:
            if mail.sha256 == sha256:
                # Committed before, but the move did not happen (crash, lost connection).
                self.log.info("imap_mail_already_committed", uid=uid, source_ref=mail.source_ref)
                return mail.id
        source_ref = c.source_ref(uidvalidity, uid)
        if known:
            # Same server position, other bytes: the server reused a UID. Keep both apart.
            source_ref = f"{source_ref}:{sha256[:16]}"
            self.log.warning(
                "imap_uid_reused", uid=uid, earlier=known[0].source_ref, source_ref=source_ref
            )
        earlier = await asyncio.to_thread(tracker.find_earlier, sha256, message_id)
        duplicate_of: int | None = None
        if earlier is not None:
            first, matched_by = earlier
            duplicate_of = first.id
            self.log.info(
                "imap_duplicate_delivery",
                uid=uid,
                matched_by=matched_by,
                first=first.source_ref,
                note="passed on; the pipeline's duplicate check answers it",
            )
        with structlog.contextvars.bound_contextvars(source_ref=source_ref):
            await self.intake(
                raw,
                source=c.source,
                source_ref=source_ref,
                source_name=message_id or f"{c.folder}/{uid}",
            )
            try:
                tracked = await asyncio.to_thread(
                    tracker.record_committed,
                    mailbox=c.name,
                    uidvalidity=uidvalidity,
                    uid=uid,
                    message_id=message_id,
                    sha256=sha256,
                    source_ref=source_ref,
                    duplicate_of=duplicate_of,
                )
            except StorageError as exc:
                # The intake committed: removing the mail is safe; only our bookkeeping is short.
                self.log.error("imap_tracker_not_updated", error=str(exc))
                return None
            self.log.info("imap_mail_committed", uid=uid, bytes=len(raw))
            return tracked.id


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
