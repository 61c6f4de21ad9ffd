"""``PipelineIntake``: what every inbox hands its messages to (a ``transports.Intake``).

For one message: a worker processes it (``gateway.intake.workers``), the writer commits it in the
next batch (``gateway.intake.writer``), and only then does the call return, so the inbox removes
the message from its place after its commit, as before. Inboxes may hand on up to ``capacity``
messages at once: that is what keeps every worker busy and lets batches form.

- A message committed before a crash (its ``source_ref`` is stored) is only handed on again.
- A message whose reads changed while it was processed is processed again (at most
  ``MAX_CONFLICTS`` times in a row; then the inbox tries it later, as for a database error).
- A bug of ours, a message over its time budget, or one that kills its worker twice is
  recorded with its raw bytes as ``Outcome.FAILED`` (the spool parks its file): it alone, never
  the messages beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from gateway.clock import utc_now
from gateway.ebxml.unwrap import whole_sha256, whole_size
from gateway.errors import StorageError
from gateway.intake.jobs import (
    Broken,
    BrokenKind,
    Committed,
    Job,
    Prepared,
    Refused,
    Stored,
    Verdict,
    WorkerResult,
)
from gateway.intake.settings import IntakeSettings
from gateway.intake.workers import Workers
from gateway.intake.writer import GroupWriter, ReplyFiles
from gateway.logs import get_logger
from gateway.records import Outcome, ReceivedRecord
from gateway.service import systemd
from gateway.service.metrics import Metrics
from gateway.store import Store
from gateway.store.intake import intake_rows
from gateway.transports import Outbox

__all__ = ["MAX_CONFLICTS", "PipelineIntake", "Stats"]

log = get_logger("daemon")

PROGRESS_EVERY_SECONDS = 10.0
#: Times in a row one message may be sent back by the writer before the inbox retries it later.
MAX_CONFLICTS = 20
#: Commits are remembered for conflict checks this long beyond the time budget.
COMMIT_LOG_MARGIN_SECONDS = 60.0


class _End(Enum):
    HANDLED = "handled"  # committed with its answer
    RECOVERED = "recovered"  # committed before (a crash after the commit)
    FAILED = "failed"  # recorded as failed, its bytes kept for a person
    STORAGE = "storage"  # nothing committed: the inbox tries again later


class _Ending(NamedTuple):
    kind: _End
    prepared: Prepared | None
    detail: str


@dataclass(slots=True, eq=False)
class _Flight:
    """One message on its way through the workers and the writer."""

    job: Job
    done: Future[_Ending]
    conflicts: int = 0

    def end(self, kind: _End, prepared: Prepared | None = None, detail: str = "") -> None:
        # The waiting call may have been cancelled (the daemon stopping): then nobody listens.
        with contextlib.suppress(InvalidStateError):
            self.done.set_result(_Ending(kind, prepared, detail))


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
    """Processes messages in ``workers`` and commits them through one writer (see the module)."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        metrics: Metrics,
        workers: Workers,
        settings: IntakeSettings,
        *,
        observe_stages: bool = False,
        alive: Callable[[], bool] = lambda: True,
        waiting: Callable[[], int] = lambda: 0,
        files: ReplyFiles | None = None,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.metrics = metrics
        self.workers = workers
        self.capacity = settings.capacity
        self.waiting = waiting  # messages not yet taken, for progress lines
        self.stats = Stats()
        self._alive = alive
        self._observe_stages = observe_stages
        #: Messages sent to the workers whose results have not come back yet.
        self._at_workers = 0
        self._counting = threading.Lock()
        self.writer = GroupWriter(
            store,
            outbox,
            batch_size=settings.batch_size,
            window=settings.message_budget_seconds + COMMIT_LOG_MARGIN_SECONDS,
            on_batch=self._observe_batch if observe_stages else None,
            coming=lambda: self._at_workers,
            files=files,
        )

    async def __call__(
        self, raw: bytes, *, source: str, source_ref: str, source_name: str
    ) -> Outcome:
        """Process and commit one message (see the module); ``StorageError``: try it later.

        From the worker to the writer and back, the message moves in their threads; this
        coroutine only waits for where it ended (one hand-over to the event loop)."""
        started = time.monotonic()
        flight = _Flight(Job(raw, source, source_ref, source_name), Future())
        self._send(flight)
        ending = await asyncio.wrap_future(flight.done)
        if ending.kind is _End.STORAGE:
            raise StorageError(ending.detail)
        if ending.kind is _End.RECOVERED:
            # Committed before a crash; only delivery and the removal were left to do.
            self.outbox.notify()
            log.info("recovered_already_committed", source_ref=source_ref)
            self.stats.count(Outcome.DUPLICATE)
            return Outcome.DUPLICATE
        if ending.kind is _End.FAILED:
            log.error("message_failed_recorded", source_ref=source_ref, detail=ending.detail[:500])
            return self._done(Outcome.FAILED, started)
        prepared = ending.prepared
        assert prepared is not None
        log.info(
            "message_handled",
            source_ref=source_ref,
            outcome=prepared.outcome.value,
            apprec_status=prepared.apprec_status,
            replies=list(prepared.reply_kinds),
            name=source_name,
        )
        return self._done(prepared.outcome, started)

    # --- in the workers' and the writer's threads ------------------------------------------------

    def _send(self, flight: _Flight) -> None:
        """To a worker."""
        with self._counting:
            self._at_workers += 1
        try:
            future = self.workers.submit(flight.job)
        except RuntimeError as exc:  # the workers were closed (stopping): try it again later
            with self._counting:
                self._at_workers -= 1
            flight.end(_End.STORAGE, None, f"not processed: {exc}")
            return
        future.add_done_callback(lambda done: self._worked(flight, done))

    def _worked(self, flight: _Flight, done: Future[WorkerResult]) -> None:
        """Back from the worker: to the writer, or to its end."""
        with self._counting:
            self._at_workers -= 1
        try:
            result = done.result()
        except BaseException as exc:  # the pool stopped (cancelled): try again later
            flight.end(_End.STORAGE, None, f"not processed: {type(exc).__name__}")
            return
        if isinstance(result, Committed):
            flight.end(_End.RECOVERED)
        elif isinstance(result, Broken):
            if result.kind is BrokenKind.STORAGE:
                flight.end(_End.STORAGE, None, result.detail)
            else:
                self._record_failure(flight, result.detail)
        else:
            written = self.writer.submit(result.rows, result)
            written.add_done_callback(lambda verdict: self._written(flight, result, verdict))

    def _written(self, flight: _Flight, prepared: Prepared, done: Future[Verdict]) -> None:
        """Back from the writer: committed, or back to a worker, or recorded as failed."""
        error = done.exception()
        if error is not None:
            flight.end(_End.STORAGE, None, str(error))
            return
        verdict = done.result()
        if isinstance(verdict, Stored):
            flight.end(_End.HANDLED, prepared)
        elif isinstance(verdict, Committed):
            flight.end(_End.RECOVERED)
        elif isinstance(verdict, Refused):
            self._record_failure(flight, verdict.detail)
        else:  # Conflict: what it read changed; again, now seeing the change
            flight.conflicts += 1
            log.info("processed_again", source_ref=flight.job.source_ref, reason="read_changed")
            if flight.conflicts >= MAX_CONFLICTS:
                detail = f"{flight.job.source_ref}: its reads kept changing; tried again later"
                flight.end(_End.STORAGE, None, detail)
            else:
                self._send(flight)

    def _record_failure(self, flight: _Flight, detail: str) -> None:
        """Keep the bytes for a person, answer nothing we are not sure of."""
        job = flight.job
        received = ReceivedRecord(
            received_at=utc_now(),
            source=job.source,
            source_ref=job.source_ref,
            raw=job.raw,
            sha256=whole_sha256(job.raw),  # of the whole message, if only its start was read
            outcome=Outcome.FAILED,
            detail=detail[:2000],
            size=whole_size(job.raw),
        )
        written = self.writer.submit(intake_rows(received, None, None, ()), None)

        def recorded(done: Future[Verdict]) -> None:
            error = done.exception()
            verdict = None if error is not None else done.result()
            if isinstance(verdict, Stored):
                flight.end(_End.FAILED, None, detail)
            elif isinstance(verdict, Committed):
                flight.end(_End.RECOVERED)
            else:
                flight.end(_End.STORAGE, None, f"{job.source_ref}: its failure was not recorded")

        written.add_done_callback(recorded)

    def _done(self, outcome: Outcome, started: float) -> Outcome:
        self.metrics.record_message(outcome.value, time.monotonic() - started)
        self.stats.count(outcome)
        self._maybe_progress()
        return outcome

    def _observe_batch(self, batch: Sequence[tuple[Prepared | None, Verdict]]) -> None:
        """The stage times the workers measured, into the metrics (in the writer thread)."""
        metrics = self.metrics
        for prepared, verdict in batch:
            if prepared is None or not isinstance(verdict, Stored):
                continue
            for stage, outcome, seconds in prepared.stages:
                metrics.stage_seconds.labels(stage=stage).observe(seconds)
                metrics.stage_runs.labels(stage=stage, outcome=outcome).inc()

    def healthy(self) -> bool:
        """False when the writer hangs in one batch or the workers' dispatcher died: systemd's
        watchdog then restarts us, and the messages in hand are recovered. (A message that
        hangs a worker is the time budget's business, not the watchdog's.)"""
        return self.writer.healthy() and self._alive()

    def close(self, *, wait: bool = True) -> None:
        """Stop the workers, then the writer (with ``wait``: after what they have in hand)."""
        self.workers.close(wait=wait)
        self.writer.close(wait=wait)

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
