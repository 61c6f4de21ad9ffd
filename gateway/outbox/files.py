"""The file outbox of the embedded default: each reply becomes a file, written atomically.

Replies are rows in the database first (written in the same transaction as the decision); this
writer delivers pending rows and marks them delivered. A reply's file name is fixed when the row
is made, so delivering a row again after a crash rewrites the same file with the same bytes: a
restart never loses a reply and never doubles one.

The intake's writer hands it each batch's replies twice: ``stage`` before the commit (every
file written under a temp name, their data durable with one sync), ``publish`` after it (the
renames, one directory fsync). The commit marks those replies delivered in the same
transaction: a reply is never written twice to the database (its body rewritten by a second
update would double the bytes written), and a crash between commit and publish leaves durable
temp files that ``_recover`` finishes at the next start. Other rows (payout decisions) are
delivered by ``notify``/``flush``: written, then marked delivered. Its service delivers what a
previous run left pending.

A disk that refuses (full, read-only, failing) is treated like a database that refuses: the
replies stay pending in the database (nothing is lost, intake goes on: ``stage`` then stages
nothing and the batch commits its replies as pending), the service tries again with backoff
until the disk takes them, ``health()`` says what is wrong meanwhile, and it recovers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.files import (
    Staged,
    discard,
    fsync_dir,
    publish,
    stage,
    staged_target,
    write_all_atomically,
)
from gateway.logs import get_logger
from gateway.records import PendingReply, ReplyRecord
from gateway.store import Store

log = get_logger("outbox.files")

#: Rows claimed at a time.
CLAIM = 500
#: The longest wait between tries while the disk refuses.
MAX_BACKOFF: Final = 60.0
#: Below this much free space ``check_space`` reports the outbox directory as failing.
MIN_FREE_BYTES: Final = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DeliveryHealth:
    """Whether replies reach the outbox directory; ``detail`` says why not."""

    ok: bool
    detail: str


class FileOutbox:
    """Writes the pending replies of ``store`` into ``directory``."""

    name = "files"

    def __init__(self, store: Store, directory: Path, *, first_retry: float = 1.0) -> None:
        self.store = store
        self.directory = directory
        self.first_retry = first_retry
        self._lock = threading.Lock()  # the worker and the payout scheduler may both flush
        #: Staged files whose publishing failed: tried again with the next batch or attempt.
        self._unpublished: list[Staged] = []
        #: (since, what) while delivery fails; None while it works.
        self._failing: tuple[float, str] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self._recover()

    def _recover(self) -> None:
        """Temp files a crash left: one staged for a reply the database has as delivered is
        finished (renamed into place: it was committed, its data durable); any other is
        removed (its reply, if committed, is still pending and is written again)."""
        finished = False
        for stale in self.directory.glob(".*.tmp"):
            target = staged_target(stale)
            if (
                target is not None
                and not target.exists()
                and self.store.outbox.delivered_file(target.name)
            ):
                stale.replace(target)
                finished = True
                log.warning("staged_reply_finished", file=target.name)
            else:
                stale.unlink(missing_ok=True)
        if finished:
            fsync_dir(self.directory)

    # --- staged by the intake's writer ----------------------------------------------------------

    def stage(self, replies: Sequence[ReplyRecord]) -> Staged | None:
        """Before the commit that marks ``replies`` delivered: their files written under temp
        names, the data durable (``gateway.files.stage``); nothing visible yet. None when the
        disk refuses: the commit leaves them pending, and the service writes them later."""
        try:
            return stage([(self.directory / r.filename, r.body) for r in replies])
        except OSError as exc:
            self._refused(exc)
            return None

    def publish(self, staged: Staged | None = None) -> None:
        """After that commit: the files in place, one directory fsync. Should the disk refuse,
        the temp files stay and are published with the next batch, by the service's next try,
        or at the next start."""
        with self._lock:
            waiting = [*self._unpublished, *([] if staged is None else [staged])]
            self._unpublished = []
            for index, files in enumerate(waiting):
                try:
                    publish(files)
                except OSError as exc:
                    self._unpublished = waiting[index:]
                    self._refused(exc)
                    return

    def discard(self, staged: Staged) -> None:
        """The commit did not happen: the temp files go."""
        discard(staged)

    def deliver(self, replies: list[PendingReply], written: list[int] | None = None) -> list[int]:
        """Write each reply's file, all at once (``write_all_atomically``: temp files, their
        data made durable together, renames, one directory fsync); return the ids written. On
        an ``OSError`` none counts as written (files already renamed are whole, and are written
        again with the same bytes)."""
        write_all_atomically([(self.directory / r.filename, r.body) for r in replies])
        done = [] if written is None else written
        done += [r.id for r in replies]
        return done

    def flush(self) -> int:
        """Deliver everything pending; return how many replies were written. Raises
        ``OSError`` when the disk refuses (what was written before is marked delivered)."""
        total = 0
        with self._lock:
            while True:
                # Claimed: another instance on the database never writes the same rows.
                pending = self.store.outbox.claim_due(CLAIM)
                written: list[int] = []
                try:
                    self.deliver(pending, written)
                finally:
                    if written:
                        self.store.outbox.mark_delivered(written)
                total += len(written)
                if len(pending) < CLAIM:  # that was all that was due
                    return total

    def notify(self) -> None:
        """New rows are committed: write them now, in this thread. Never raises for the disk:
        while it refuses, the rows stay pending and the service tries again."""
        self._attempt()

    def health(self) -> DeliveryHealth:
        """Whether delivery works now (in the daemon); see also ``check_space``."""
        failing = self._failing
        if failing is None:
            return DeliveryHealth(True, f"{self.directory}: replies delivered")
        since, what = failing
        return DeliveryHealth(
            False,
            f"{self.directory}: replies not delivered for {time.time() - since:.0f} s ({what}); "
            "they wait in the database and are written once the disk takes them",
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver what a previous run left pending; while the disk refuses, try again with
        backoff until ``stop``."""
        delivered = await asyncio.to_thread(self._attempt)
        if delivered:
            log.info("pending_replies_delivered", count=delivered)
        backoff = self.first_retry
        while not stop.is_set():
            if self._failing is None:
                backoff = self.first_retry
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff if self._failing else 1.0)
            if self._failing is not None and not stop.is_set():
                await asyncio.to_thread(self._attempt)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _attempt(self) -> int:
        if self._unpublished:
            self.publish()
        try:
            delivered = self.flush()
        except OSError as exc:
            self._refused(exc)
            return 0
        if self._unpublished:
            return delivered  # still failing: publish said so
        if self._failing is not None:
            log.info(
                "outbox_delivery_recovered",
                directory=str(self.directory),
                after_seconds=round(time.time() - self._failing[0], 1),
            )
            self._failing = None
        return delivered


    def _refused(self, exc: OSError) -> None:
        what = os.strerror(exc.errno) if exc.errno else str(exc)
        if self._failing is None:
            self._failing = (time.time(), what)
            log.error("outbox_delivery_failed", directory=str(self.directory), error=what)


def check_space(directory: Path, *, min_free_bytes: int = MIN_FREE_BYTES) -> DeliveryHealth:
    """For ``gateway health``: is there room for replies in ``directory``?"""
    try:
        st = os.statvfs(directory)
    except OSError as exc:
        return DeliveryHealth(False, f"{directory}: {exc.strerror or exc}")
    free = st.f_bavail * st.f_frsize
    text = f"{directory}: {free / 1024 / 1024:.0f} MiB free"
    if free < min_free_bytes:
        return DeliveryHealth(False, f"{text}; replies wait in the database until there is room")
    return DeliveryHealth(True, text)
