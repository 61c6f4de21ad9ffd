"""The file outbox of the embedded default: each reply becomes a file, written atomically.

Replies are rows in the database first (written in the same transaction as the decision); this
writer delivers pending rows and marks them delivered. A reply's file name is fixed when the row
is made, so delivering a row again after a crash rewrites the same file with the same bytes: a
restart never loses a reply and never doubles one.

As an ``Outbox`` (``gateway.transports``) it writes on ``notify``, in the caller's thread: right
after each batch's commit, in the intake's writer, so a message's replies are on disk before its
spool file moves. The replies of a batch are written together, with a number of syncs that does
not grow with their number. Its service only delivers what a previous run left pending.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from gateway.files import write_all_atomically
from gateway.logs import get_logger
from gateway.records import PendingReply
from gateway.store import Store

log = get_logger("outbox.files")


class FileOutbox:
    """Writes the pending replies of ``store`` into ``directory``."""

    name = "files"

    def __init__(self, store: Store, directory: Path) -> None:
        self.store = store
        self.directory = directory
        self._lock = threading.Lock()  # the worker and the payout scheduler may both flush
        directory.mkdir(parents=True, exist_ok=True)
        # A crash mid-write leaves a temp file; its reply is still pending and is written again.
        for stale in directory.glob(".*.tmp"):
            stale.unlink(missing_ok=True)

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
