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
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

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


class FileOutbox:
    """Writes the pending replies of ``store`` into ``directory``."""

    name = "files"

    def __init__(self, store: Store, directory: Path) -> None:
        self.store = store
        self.directory = directory
        self._lock = threading.Lock()  # the worker and the payout scheduler may both flush
        #: Staged files whose publishing failed: tried again with the next batch.
        self._unpublished: list[Staged] = []
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

    def stage(self, replies: Sequence[ReplyRecord]) -> Staged:
        """Before the commit that marks ``replies`` delivered: their files written under temp
        names, the data durable (``gateway.files.stage``); nothing visible yet."""
        return stage([(self.directory / r.filename, r.body) for r in replies])

    def publish(self, staged: Staged) -> None:
        """After that commit: the files in place, one directory fsync. Should the disk refuse,
        the temp files stay and are published with the next batch (or at the next start)."""
        with self._lock:
            waiting, self._unpublished = [*self._unpublished, staged], []
            for index, files in enumerate(waiting):
                try:
                    publish(files)
                except OSError:
                    log.exception("replies_not_published", files=len(files.files))
                    self._unpublished = waiting[index:]
                    return

    def discard(self, staged: Staged) -> None:
        """The commit did not happen: the temp files go."""
        discard(staged)

    def deliver(self, replies: list[PendingReply]) -> list[int]:
        """Write each reply's file, all at once (``write_all_atomically``: temp files, their
        data made durable together, renames, one directory fsync); return the ids written."""
        write_all_atomically([(self.directory / r.filename, r.body) for r in replies])
        return [r.id for r in replies]

    def flush(self) -> int:
        """Deliver everything pending; return how many replies were written."""
        total = 0
        with self._lock:
            while True:
                pending = self.store.outbox.pending_replies()
                if not pending:
                    return total
                self.store.outbox.mark_delivered(self.deliver(pending))
                total += len(pending)

    def notify(self) -> None:
        """New rows are committed: write them now, in this thread."""
        self.flush()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver what a previous run left pending, then wait for ``stop``."""
        delivered = await asyncio.to_thread(self.flush)
        if delivered:
            log.info("pending_replies_delivered", count=delivered)
        await stop.wait()
