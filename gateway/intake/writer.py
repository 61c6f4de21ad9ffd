"""The one writer of the claims store: messages committed in batches (group commit).

Workers hand their results here; one thread writes them. It takes every result waiting (up to
``batch_size``) and writes them all in **one transaction**, each message inside a savepoint of
its own; then tells the outbox once (the file outbox writes the batch's reply files with one
directory fsync); only then does it report each message committed, after which its inbox moves
it away (the spool moves its files). The order of the durable steps is the one that made a
single message crash-safe (commit, replies, spool move), now per batch: a crash anywhere leaves
each message of the batch either fully committed (its replies are delivered again at start, its
spool file finished) or not at all (its file is still in ``work/``, processed again), never
half. A batch costs one commit (one WAL fsync) however many messages it holds, and a busy
gateway makes bigger batches by itself: results pile up while the previous batch commits.

Before writing a message, the writer checks it against what was committed after the snapshot
its worker read (``gateway.intake.conflicts``): a message whose reads changed is not written
but sent back to be processed again (``Conflict``), so two messages for the same patient in
flight at once are decided one after the other, as if processed in turn. A message whose
``source_ref`` is committed already is reported ``Committed``; one whose rows cannot be written
is rolled back alone (``Refused``) and the rest of the batch is committed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from gateway.errors import StorageError
from gateway.files import Staged
from gateway.intake.conflicts import Changes, CommitLog, changes_of
from gateway.intake.jobs import Committed, Conflict, Prepared, Refused, Stored, Verdict
from gateway.logs import get_logger
from gateway.outbox.signals import match_signal
from gateway.records import ReplyRecord
from gateway.store import Store
from gateway.store.engine import Transaction
from gateway.store.intake import IntakeRows, savepoint, write_intake
from gateway.store.outbox import record_delivery_in
from gateway.transports import Outbox

__all__ = ["GroupWriter"]

log = get_logger("daemon")

#: A batch in the writer this long means a hang (a commit takes milliseconds).
HUNG_AFTER_SECONDS = 120.0
#: The longest a result waits for others to share its batch (only while more are coming): a
#: batch costs about the same CPU and disk writes whatever its size, and at full load this
#: makes batches of tens of messages; an idle gateway commits at once.
LINGER_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class _Item:
    rows: IntakeRows
    prepared: Prepared | None  # None: a record of a failure, written whatever else changed
    future: Future[Verdict]


#: Told after each batch is committed: each message's ``Prepared`` (None for a failure record)
#: and what became of it.
BatchReport = Callable[[Sequence[tuple[Prepared | None, Verdict]]], None]


class ReplyFiles(Protocol):
    """An outbox that writes replies as files and can stage them around a commit (the file
    outbox): see ``gateway.outbox.files``."""

    def stage(self, replies: Sequence[ReplyRecord]) -> Staged | None: ...

    def publish(self, staged: Staged) -> None: ...

    def discard(self, staged: Staged) -> None: ...


class GroupWriter:
    """The writer thread (see the module)."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        *,
        batch_size: int,
        window: float,
        on_batch: BatchReport | None = None,
        coming: Callable[[], int] = lambda: 0,
        linger: float = LINGER_SECONDS,
        files: ReplyFiles | None = None,
    ) -> None:
        self.store = store
        self.outbox = outbox
        #: With a file outbox: the batch's reply files are staged before its commit, which
        #: marks them delivered, and published after it (no second write of each reply row).
        self.files = files
        self.batch_size = batch_size
        #: How many results are still to come (messages in the workers): worth waiting for.
        self.coming = coming
        self.linger = linger
        self.log = CommitLog(window)
        self.on_batch = on_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._busy_since: float | None = None
        #: CPU seconds of the writer thread, once it has ended.
        self.cpu_seconds = 0.0
        #: Batches committed, and the messages in them (for the stop summary).
        self.batches = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="intake-writer", daemon=True)
        self._thread.start()

    def submit(self, rows: IntakeRows, prepared: Prepared | None) -> Future[Verdict]:
        """Commit ``rows`` in the next batch (``prepared``: checked for conflicts first).
        The future fails with ``StorageError`` when the batch could not be committed."""
        future: Future[Verdict] = Future()
        self._queue.put(_Item(rows, prepared, future))
        return future

    def healthy(self) -> bool:
        """False when one batch has taken far longer than any should (a hang)."""
        started = self._busy_since
        alive = self._thread.is_alive()
        return alive and (started is None or time.monotonic() - started < HUNG_AFTER_SECONDS)

    def close(self, *, wait: bool = True) -> None:
        """Stop after what is queued (``wait``), or now."""
        self._queue.put(None)
        self._thread.join(timeout=None if wait else 1.0)

    # --- in the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self.cpu_seconds = time.thread_time()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            self._write(self._gather(first))

    def _gather(self, first: _Item) -> list[_Item]:
        """``first`` and what follows it: everything waiting, and what the workers are about to
        send, for at most ``linger`` seconds (a batch costs the same whatever its size, so a
        little waiting while the workers are busy saves CPU; an idle gateway commits at once)."""
        batch = [first]
        until = time.monotonic() + self.linger
        while len(batch) < self.batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                left = until - time.monotonic()
                if left <= 0 or self.coming() <= 0:
                    break
                try:
                    item = self._queue.get(timeout=left)
                except queue.Empty:
                    break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch

    def _write(self, batch: list[_Item]) -> None:
        self._busy_since = time.monotonic()
        try:
            verdicts, staged = self._commit(batch)
        except BaseException as exc:
            if not isinstance(exc, StorageError):
                log.exception("batch_not_committed", messages=len(batch))
            for item in batch:
                item.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._busy_since = None
        self.batches += 1
        self.written += len(batch)
        if self.files is not None:
            if staged is not None:
                self.files.publish(staged)
        else:
            self._deliver()
        self._match_signals(batch, verdicts)
        if self.on_batch is not None:
            try:
                self.on_batch([(item.prepared, v) for item, v in zip(batch, verdicts, strict=True)])
            except Exception:
                log.exception("batch_report_failed")
        for item, verdict in zip(batch, verdicts, strict=True):
            item.future.set_result(verdict)

    def _commit(self, batch: list[_Item]) -> tuple[list[Verdict], Staged | None]:
        """One transaction for the batch. Should writing one message fail, the batch is
        written again with each message in a savepoint of its own, so that message alone is
        refused (a failing database fails both tries, and the whole batch)."""
        try:
            return self._transaction(batch, isolated=False)
        except StorageError:
            if len(batch) == 1:
                raise
            log.warning("batch_retried_message_by_message", messages=len(batch))
            return self._transaction(batch, isolated=True)

    def _transaction(
        self, batch: list[_Item], *, isolated: bool
    ) -> tuple[list[Verdict], Staged | None]:
        verdicts: list[Verdict] = []
        fresh: list[tuple[int, Changes]] = []
        replies: list[ReplyRecord] = []
        reply_ids: list[int] = []
        in_batch = CommitLog(window=float("inf"))
        intake = self.store.intake
        staged: Staged | None = None
        try:
            with intake.transaction(f"could not store a batch of {len(batch)} messages") as tx:
                self._write_rows(tx, batch, isolated, verdicts, fresh, in_batch)
                for item, verdict in zip(batch, verdicts, strict=True):
                    if isinstance(verdict, Stored):
                        replies += item.rows.replies
                        reply_ids += verdict.reply_ids
                if self.files is not None and replies:
                    # Durable under temp names before the commit that says they are delivered.
                    # A disk that refuses stages nothing: they stay pending, written later.
                    staged = self.files.stage(replies)
                    if staged is not None:
                        record_delivery_in(tx, reply_ids, acks_expected=False)
        except BaseException:
            if staged is not None and self.files is not None:
                self.files.discard(staged)
            raise
        for received_id, changes in fresh:
            self.log.add(received_id, changes)
        self.log.forget_older()
        return verdicts, staged

    def _write_rows(
        self,
        tx: Transaction,
        batch: list[_Item],
        isolated: bool,
        verdicts: list[Verdict],
        fresh: list[tuple[int, Changes]],
        in_batch: CommitLog,
    ) -> None:
        """Each message's rows, unless it conflicts or is committed already."""
        intake = self.store.intake
        for item in batch:
            rows, prepared = item.rows, item.prepared
            committed, ids_taken = intake.stored_already(tx, rows)
            if committed:
                verdicts.append(Committed(rows.source_ref))
                continue
            if prepared is not None and (
                ids_taken or _conflicts(self.log, prepared) or _conflicts(in_batch, prepared)
            ):
                verdicts.append(Conflict())
                continue
            if isolated:
                try:
                    with savepoint(tx, "message"):
                        written = write_intake(tx, rows)
                except Exception as exc:  # the driver's error: this message alone is undone
                    log.exception("message_not_written", source_ref=rows.source_ref)
                    verdicts.append(Refused(f"{type(exc).__name__}: {exc}"[:2000]))
                    continue
            else:
                written = write_intake(tx, rows)
            changes = changes_of(rows, written)
            in_batch.add(written.received_id, changes)
            fresh.append((written.received_id, changes))
            verdicts.append(Stored(written.received_id, written.reply_ids))

    def _deliver(self) -> None:
        """The batch is committed: let the outbox deliver its replies (the file outbox writes
        them here, in this thread). Replies it cannot write now stay pending in the database
        and are delivered later, so the batch still counts as committed."""
        try:
            self.outbox.notify()
        except Exception:
            log.exception("replies_not_delivered_now", hint="they stay pending and are retried")

    def _match_signals(self, batch: list[_Item], verdicts: list[Verdict]) -> None:
        """Trusted signals for our own messages, each matched in its own transaction after the
        batch's commit: a crash in between leaves one stored but unmatched, so our message is
        resent and acknowledged again."""
        for item, verdict in zip(batch, verdicts, strict=True):
            prepared = item.prepared
            if prepared is None or prepared.signal is None or not isinstance(verdict, Stored):
                continue
            try:
                match_signal(
                    self.store, prepared.signal, verdict.received_id, now=prepared.signal_at
                )
            except StorageError:
                log.exception("signal_not_matched", source_ref=item.rows.source_ref)


def _conflicts(log_: CommitLog, prepared: Prepared) -> bool:
    return log_.conflicts(prepared.snapshot, prepared.read_exact, prepared.read_ranges)
