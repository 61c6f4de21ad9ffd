"""``gateway run``: poll the spool, process each message, deliver replies, shut down cleanly.

For each claimed file the order is fixed, and is what makes a crash at any point harmless:

1. the pipeline commits the message, its decision and its replies in one transaction;
2. the outbox writes the replies and marks them delivered;
3. the spool moves the file to ``processed/``.

On start, replies still pending are delivered, and files left in ``work/`` are recovered: one
whose intake is already committed is just finished (so it is never answered twice), the others
are processed again (so none is lost).

Processing runs in one worker thread so the event loop stays free for signals (and, later, for
IMAP and SMTP). SIGTERM/SIGINT stop intake; the message in hand is finished within
``daemon.drain_seconds``; a file still in ``work/`` after that is recovered on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog

from gateway.clock import utc_now
from gateway.config import Config
from gateway.errors import StorageError
from gateway.inbox.imap import run_mailboxes
from gateway.inbox.mail_tracking import MailTracker
from gateway.inbox.spool import Claimed, Spool
from gateway.logs import get_logger
from gateway.outbox.files import FileOutbox
from gateway.outbox.reliability import AckTracker
from gateway.outbox.routing import Routing
from gateway.outbox.smtp import SmtpOutbox
from gateway.partners.registry import PartnerRegistry
from gateway.payout.schedule import PayoutScheduler
from gateway.payout.sending import deps_from_config
from gateway.pipeline import STAGES, Pipeline
from gateway.records import Outcome, ReceivedRecord
from gateway.rules.engine import RuleEngine
from gateway.rules.registry import RULES
from gateway.security.cms import DecryptionKey
from gateway.security.xmldsig import load_signer
from gateway.service import systemd
from gateway.service.health import days_to_expiry
from gateway.service.metrics import Metrics
from gateway.store import Store
from gateway.tariffs.csv_format import TariffFileError
from gateway.tariffs.loading import load_book
from gateway.validation.catalog import SchemaCatalog

log = get_logger("daemon")

# Files claimed per look into incoming/: small, because a claimed file waits for the ones
# claimed before it (latency), while claiming again costs only ~0.1 ms per file.
BATCH = 10
PROGRESS_EVERY_SECONDS = 10.0
#: A message in the worker this long means a hang, not a slow message (p99 is well below 1 s).
HUNG_AFTER_SECONDS = 120.0


@dataclass(slots=True)
class Stats:
    """Counters for progress lines and the end-of-run summary."""

    started: float = field(default_factory=time.monotonic)
    handled: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    last_progress: float = field(default_factory=time.monotonic)

    def count(self, outcome: Outcome) -> None:
        self.handled += 1
        self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1


class Daemon:
    """Owns the store, pipeline, spool and outbox for one ``gateway run``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.database)
        catalog = SchemaCatalog.default(extra_dirs=config.validation.official_schema_dirs)
        engine = RuleEngine(RULES)
        self.metrics = Metrics()
        self.partners: PartnerRegistry | None = None
        if config.partners.directory is not None:
            self.partners = PartnerRegistry.load(config.partners.directory)
        self.pipeline = Pipeline(
            identity=config.identity,
            store=self.store,
            catalog=catalog,
            signer=load_signer(config.signing.key_file, config.signing.cert_file),
            engine=engine,
            max_message_bytes=config.validation.max_message_bytes,
            practitioners=config.practitioners,
            partners=self.partners,
            decryption_keys=[
                DecryptionKey.from_files(pair.key_file, pair.cert_file)
                for pair in config.security.decryption
            ],
            security=config.security,
            observe=self.metrics.observe_stages(STAGES),
        )
        self._tariff_version = ""
        self.reload_tariffs()
        self.spool = Spool(config.spool)
        #: The file outbox writes replies right after each commit; SMTP runs as a service.
        self.outbox: FileOutbox | None = (
            FileOutbox(config.outbox.directory) if config.outbox.kind == "file" else None
        )
        #: Long-running services beside the spool loop (mail inboxes, SMTP sender, schedules):
        #: each is started with the daemon's stop event and must return soon after it is set.
        self.services: list[tuple[str, Callable[[asyncio.Event], Coroutine[Any, Any, None]]]] = []
        self.stats = Stats()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")
        #: When the message in the worker started (monotonic), for the watchdog.
        self._busy_since: float | None = None
        self.stopping = asyncio.Event()
        self._tracker: MailTracker | None = None
        if config.mailboxes:
            self._tracker = MailTracker(config.database)
            tracker = self._tracker
            self.services.append(
                (
                    "imap",
                    lambda stop: run_mailboxes(config.mailboxes, self.intake, tracker, stop),
                )
            )
        self.routing = Routing(config.identity.her_id, lambda: self.partners)
        self.smtp: SmtpOutbox | None = None
        if config.outbox.kind == "smtp":
            assert config.outbox.smtp is not None  # the config requires [outbox.smtp]
            self.smtp = SmtpOutbox(self.store, config.outbox.smtp, self.routing.resolve)
            self.services.append(("smtp", self.smtp.run))
            # ebMS reliable messaging: resend unacknowledged messages per the partner's CPA.
            # (A file outbox has no partner on the other end to acknowledge anything.)
            acks = AckTracker(
                self.store, self.routing.policy_for, on_resend=self._wake_sender_threadsafe
            )
            self.services.append(("acks", acks.run))
        self.payout: PayoutScheduler | None = None
        if config.payout.enabled:
            self.payout = PayoutScheduler(
                config.payout,
                config.database,
                deps_from_config(config, config.payout, signer=self.pipeline.signer),
                flush=self._flush_from_scheduler,
            )
            self.services.append(("payout", self.payout.run))
        self.services.append(
            ("watchdog", lambda stop: systemd.watchdog_loop(stop, self.healthy))
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._register_gauges()

    def _wake_sender_threadsafe(self) -> None:
        """New rows are committed: wake the SMTP sender (callable from any thread)."""
        if self.smtp is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self.smtp.notify)

    def _flush_from_scheduler(self) -> None:
        """After a payout run is queued: write it out (file outbox, on the one worker thread
        that writes the store) or wake the SMTP sender."""
        if self.outbox is not None:
            self._worker.submit(self.outbox.flush, self.store).result()
        self._wake_sender_threadsafe()

    # --- operations: health, metrics, reload -----------------------------------------------------

    def healthy(self) -> bool:
        """False when one message has been in the worker far longer than any should take (a
        hang): systemd's watchdog then restarts us, and the message is recovered."""
        started = self._busy_since
        return started is None or time.monotonic() - started < HUNG_AFTER_SECONDS

    def _register_gauges(self) -> None:
        m = self.metrics
        m.register_gauge("inbox_depth", lambda: float(self.spool.incoming_count()), inbox="spool")
        m.register_gauge(
            "dead_letters",
            lambda: float(sum(1 for p in self.config.spool.bad.iterdir() if p.is_file())),
            kind="spool",
        )
        summary = self.store.outbox.summary  # under the store's lock: safe from any thread
        m.register_gauge("oldest_pending_reply_age", lambda: summary().oldest_pending_seconds)
        m.register_gauge("outstanding_acks", lambda: float(summary().awaiting_ack))
        m.register_gauge("dead_letters", lambda: float(summary().dead), kind="reply")
        cert = self.config.signing.cert_file
        m.register_gauge(
            "certificate_expiry_days", lambda: days_to_expiry(cert), certificate="signing"
        )

    def reload_partners(self) -> None:
        """SIGHUP: read the CPA directory again; a broken file keeps the registry in force."""
        if self.partners is None:
            log.info("reload_no_partners_configured")
            return
        registry, problems = self.partners.reloaded()
        for problem in problems:
            log.error("cpa_not_loaded", file=str(problem.path), reason=problem.reason)
        if problems:
            log.error("partners_kept", reason="a CPA file is broken; fix it and reload again")
            return
        self.partners = registry
        self.pipeline.partners = registry
        log.info("partners_reloaded", cpas=len(registry))

    def reload_tariffs(self) -> None:
        """Load the tariff data in force if a newer import exists (no restart needed)."""
        version = self.store.tariff_imports.version()
        if version == self._tariff_version:
            return
        try:
            book = load_book(self.store.tariff_imports)
        except TariffFileError as exc:
            # Keep deciding with the data in force rather than stop taking claims.
            log.error("tariffs_not_loaded", error=str(exc), kept=self._tariff_version or "none")
            self._tariff_version = version
            return
        self.pipeline.tariffs = book
        self._tariff_version = version
        if not book.takster and not book.nlk_codes:
            log.warning(
                "no_tariff_data",
                hint="tariff, amount, time and laboratory rules are inactive until "
                "`gateway tariffs import FILE...` has been run",
            )
        else:
            log.info(
                "tariffs_loaded",
                version=version,
                takster=len(book.takster),
                nlk_codes=len(book.nlk_codes),
                nlk_rates=len(book.nlk_rates),
            )

    def close(self, *, wait: bool = True) -> None:
        self._worker.shutdown(wait=wait, cancel_futures=True)
        self.metrics.stop_server()
        if wait:
            self.store.close()
            if self._tracker is not None:
                self._tracker.close()

    # --- the per-message work (runs in the worker thread) ----------------------------------------

    def _process(self, item: Claimed) -> Outcome:
        """One spool file: process it, then move it to ``processed/`` (or park it)."""
        with structlog.contextvars.bound_contextvars(source_ref=item.source_ref):
            raw = item.path.read_bytes()
            outcome = self._process_raw(
                raw, source="spool", source_ref=item.source_ref, source_name=item.original_name
            )
            if outcome is Outcome.FAILED:
                self.spool.park(item, "processing failed; the raw bytes are in the database")
            else:
                self.spool.done(item)
            return outcome

    def _process_raw(
        self, raw: bytes, *, source: str, source_ref: str, source_name: str
    ) -> Outcome:
        """Commit one received message (idempotent per ``source_ref``) and deliver its replies
        to a file outbox. Raises ``StorageError`` when nothing could be committed."""
        self._busy_since = started = time.monotonic()
        try:
            outcome = self._process_raw_timed(
                raw, source=source, source_ref=source_ref, source_name=source_name
            )
        finally:
            self._busy_since = None
        self.metrics.record_message(outcome.value, time.monotonic() - started)
        return outcome

    def _process_raw_timed(
        self, raw: bytes, *, source: str, source_ref: str, source_name: str
    ) -> Outcome:
        if self.store.intake.received_by_ref(source_ref) is not None:
            # Committed before a crash; only delivery and the move were left to do.
            self._after_commit()
            log.info("recovered_already_committed")
            return Outcome.DUPLICATE
        try:
            result = self.pipeline.handle(
                raw, source=source, source_ref=source_ref, source_name=source_name
            )
        except StorageError:
            raise  # the database is the problem, not the message: retry later
        except Exception as exc:
            # A bug of ours must not stop the daemon or lose the message: keep the bytes for a
            # person, answer nothing we are not sure of.
            log.exception("message_failed", error=type(exc).__name__)
            self._record_failure(source, source_ref, raw, exc)
            return Outcome.FAILED
        self._after_commit()
        log.info(
            "message_handled",
            outcome=result.outcome.value,
            apprec_status=result.apprec_status,
            replies=list(result.replies),
            name=source_name,
        )
        return result.outcome

    def _after_commit(self) -> None:
        """Hand new replies to the outbox: written at once by a file outbox, else the SMTP
        sender is woken (it runs on the event loop)."""
        if self.outbox is not None:
            self.outbox.flush(self.store)
        self._wake_sender_threadsafe()

    def _record_failure(self, source: str, source_ref: str, raw: bytes, exc: Exception) -> None:
        try:
            self.store.intake.commit(
                ReceivedRecord(
                    received_at=utc_now(),
                    source=source,
                    source_ref=source_ref,
                    raw=raw,
                    sha256=hashlib.sha256(raw).hexdigest(),
                    outcome=Outcome.FAILED,
                    detail=f"{type(exc).__name__}: {exc}"[:2000],
                ),
                None,
                None,
                (),
            )
        except StorageError:
            log.exception("failure_not_recorded")
            raise

    # --- the loop --------------------------------------------------------------------------------

    async def _run_item(self, item: Claimed) -> None:
        loop = asyncio.get_running_loop()
        backoff = 1.0
        while True:
            try:
                outcome = await loop.run_in_executor(self._worker, self._process, item)
            except StorageError:
                log.exception("storage_error_retrying", retry_in=backoff)
                if self.stopping.is_set():
                    return  # left in work/; recovered on the next start
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            self.stats.count(outcome)
            self._maybe_progress()
            return

    def _maybe_progress(self) -> None:
        now = time.monotonic()
        if now - self.stats.last_progress < PROGRESS_EVERY_SECONDS:
            return
        self.stats.last_progress = now
        elapsed = now - self.stats.started
        systemd.status(f"{self.stats.handled} messages handled")
        log.info(
            "progress",
            handled=self.stats.handled,
            per_second=round(self.stats.handled / elapsed, 1) if elapsed else None,
            waiting=self.spool.incoming_count(),
            outcomes=self.stats.outcomes,
        )

    async def intake(self, raw: bytes, *, source: str, source_ref: str, source_name: str) -> None:
        """Process one message from a mail inbox; returns once it is committed.

        The inbox may then remove the mail. Raises ``StorageError`` when nothing could be
        committed (the mail stays and is fetched again). Idempotent per ``source_ref``."""
        loop = asyncio.get_running_loop()

        def work() -> Outcome:
            with structlog.contextvars.bound_contextvars(source_ref=source_ref):
                return self._process_raw(
                    raw, source=source, source_ref=source_ref, source_name=source_name
                )

        outcome = await loop.run_in_executor(self._worker, work)
        self.stats.count(outcome)
        self._maybe_progress()

    async def run(self, *, once: bool = False) -> int:
        """Run every service until stopped (with ``once``: until the spool is empty)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        if self.outbox is not None:
            delivered = await loop.run_in_executor(self._worker, self.outbox.flush, self.store)
            if delivered:
                log.info("pending_replies_delivered", count=delivered)
        if self.config.metrics.port:
            host, port = self.metrics.start_server(
                self.config.metrics.host, self.config.metrics.port
            )
            log.info("metrics_serving", url=f"http://{host}:{port}/metrics")
        log.info(
            "started",
            spool=str(self.config.spool.incoming),
            outbox=str(self.config.outbox.directory),
            database=str(self.config.database),
            services=[name for name, _ in self.services],
            partners=len(self.partners) if self.partners is not None else None,
            mailboxes=[m.name for m in self.config.mailboxes],
        )
        systemd.ready("taking claims")
        async with asyncio.TaskGroup() as group:
            spool = group.create_task(self._spool_loop(once=once), name="spool")
            for name, service in self.services:
                group.create_task(service(self.stopping), name=name)
            if once:
                await spool
                self.stopping.set()
        log.info(
            "stopped",
            handled=self.stats.handled,
            outcomes=self.stats.outcomes,
            seconds=round(time.monotonic() - self.stats.started, 1),
        )
        return 0

    async def _spool_loop(self, *, once: bool) -> None:
        """Recover ``work/``, then claim and process spool files until stopped."""
        loop = asyncio.get_running_loop()
        again, parked = self.spool.recover()
        for path in parked:
            log.error("spool_file_parked", file=path.name, where=str(path.parent))
        if again:
            log.warning("spool_recovering", files=len(again))
        for item in again:
            await self._run_item(item)
        while not self.stopping.is_set():
            await loop.run_in_executor(self._worker, self.reload_tariffs)
            batch = self.spool.claim(BATCH)
            for position, item in enumerate(batch):
                if self.stopping.is_set():
                    # Claimed but not started: back to incoming/, untouched.
                    for unstarted in batch[position:]:
                        self.spool.release(unstarted)
                    break
                await self._run_item(item)
            if self.stopping.is_set() or (once and not batch):
                return
            if not batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.stopping.wait(), timeout=self.config.spool.poll_interval
                    )


async def run_daemon(config: Config, *, once: bool = False) -> int:
    """Run until SIGTERM/SIGINT (or until the spool is empty with ``once``)."""
    daemon = Daemon(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _request_stop, daemon, sig)
    loop.add_signal_handler(signal.SIGHUP, _reload, daemon)
    drained = True
    try:
        work = asyncio.create_task(daemon.run(once=once))
        stop = asyncio.create_task(daemon.stopping.wait())
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if work.done():
            return work.result()
        try:
            # Stop requested: the message in hand may finish, for a bounded time.
            return await asyncio.wait_for(work, timeout=config.drain_seconds)
        except TimeoutError:
            drained = False
            log.error("drain_timeout", seconds=config.drain_seconds)
            return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        daemon.close(wait=drained)


def _request_stop(daemon: Daemon, sig: signal.Signals) -> None:
    if not daemon.stopping.is_set():
        log.info("stop_requested", signal=sig.name)
        systemd.stopping("draining")
    daemon.stopping.set()


def _reload(daemon: Daemon) -> None:
    systemd.reloading()
    try:
        daemon.reload_partners()
    except Exception:
        log.exception("reload_failed")
    systemd.ready("taking claims")
