"""The intake every inbox hands its messages to: the pipeline, run in one worker thread.

For each message the order is fixed, and is what makes a crash at any point harmless:

1. the pipeline commits the message, its decision and its replies in one transaction;
2. the outbox is told (a file outbox writes the replies and marks them delivered right here);
3. the intake returns, and only then does the inbox remove the message from its place.

A message whose ``source_ref`` is already committed (a crash after 1) is only handed on again.
The pipeline runs in ONE worker thread, so the event loop stays free for signals, the mail
inboxes and the SMTP sender, and one thread writes the claims. Before each message the tariff
data in force is checked (one cheap query), so an import applies without a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from gateway.clock import utc_now
from gateway.errors import StorageError
from gateway.logs import get_logger
from gateway.pipeline import Pipeline
from gateway.records import Outcome, ReceivedRecord
from gateway.service import systemd
from gateway.service.metrics import Metrics
from gateway.store import Store
from gateway.tariffs.csv_format import TariffFileError
from gateway.tariffs.loading import load_book
from gateway.transports import Outbox

log = get_logger("daemon")

T = TypeVar("T")

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


class PipelineIntake:
    """Commits each message through the pipeline, in the one worker thread (an ``Intake``)."""

    def __init__(
        self,
        pipeline: Pipeline,
        store: Store,
        outbox: Outbox,
        metrics: Metrics,
        *,
        waiting: Callable[[], int] = lambda: 0,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.outbox = outbox
        self.metrics = metrics
        self.waiting = waiting  # messages not yet taken, for progress lines
        self.stats = Stats()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")
        #: When the message in the worker started (monotonic), for the watchdog.
        self._busy_since: float | None = None
        self._tariff_version = ""
        self.refresh_tariffs()

    async def __call__(
        self, raw: bytes, *, source: str, source_ref: str, source_name: str
    ) -> Outcome:
        """Process one message in the worker; return once it is committed (see the module)."""

        def work() -> Outcome:
            with structlog.contextvars.bound_contextvars(source_ref=source_ref):
                return self.process(
                    raw, source=source, source_ref=source_ref, source_name=source_name
                )

        outcome = await self.in_worker(work)
        self.stats.count(outcome)
        self._maybe_progress()
        return outcome

    async def in_worker(self, work: Callable[[], T]) -> T:
        """Run ``work`` in the worker thread, after the message in hand."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, work)

    def healthy(self) -> bool:
        """False when one message has been in the worker far longer than any should take (a
        hang): systemd's watchdog then restarts us, and the message is recovered."""
        started = self._busy_since
        return started is None or time.monotonic() - started < HUNG_AFTER_SECONDS

    def close(self, *, wait: bool = True) -> None:
        """Stop the worker (``wait``: after the message in hand)."""
        self._worker.shutdown(wait=wait, cancel_futures=True)

    # --- in the worker thread --------------------------------------------------------------------

    def process(self, raw: bytes, *, source: str, source_ref: str, source_name: str) -> Outcome:
        """Commit one received message (idempotent per ``source_ref``) and tell the outbox.
        Raises ``StorageError`` when nothing could be committed."""
        self._busy_since = started = time.monotonic()
        try:
            self.refresh_tariffs()
            outcome = self._process(
                raw, source=source, source_ref=source_ref, source_name=source_name
            )
        finally:
            self._busy_since = None
        self.metrics.record_message(outcome.value, time.monotonic() - started)
        return outcome

    def _process(self, raw: bytes, *, source: str, source_ref: str, source_name: str) -> Outcome:
        if self.store.intake.received_by_ref(source_ref) is not None:
            # Committed before a crash; only delivery and the removal were left to do.
            self.outbox.notify()
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
        self.outbox.notify()
        log.info(
            "message_handled",
            outcome=result.outcome.value,
            apprec_status=result.apprec_status,
            replies=list(result.replies),
            name=source_name,
        )
        return result.outcome

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

    def refresh_tariffs(self) -> None:
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

    # --- progress --------------------------------------------------------------------------------

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
            waiting=self.waiting(),
            outcomes=self.stats.outcomes,
        )
