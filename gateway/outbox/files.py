"""The file outbox of the embedded default: each reply becomes a file, written atomically.

Replies are rows in the database first (written in the same transaction as the decision); this
writer delivers pending rows and marks them delivered. A reply's file name is fixed when the row
is made, so delivering a row again after a crash rewrites the same file with the same bytes: a
restart never loses a reply and never doubles one.

As an ``Outbox`` (``gateway.transports``) it writes on ``notify``, in the caller's thread: right
after each commit, in the pipeline's worker, so a message's replies are on disk before its
spool file moves. Its service only delivers what a previous run left pending.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from gateway.files import fsync_dir, write_atomically
from gateway.logs import get_logger
from gateway.records import PendingReply
from gateway.store import Store

log = get_logger("outbox.files")

#: Rows claimed at a time.
CLAIM = 500


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
        """Write each reply's file (temp file, fsync, rename); return the ids written."""
        written: list[int] = []
        for reply in replies:
            write_atomically(self.directory / reply.filename, reply.body)
            written.append(reply.id)
        if written:
            fsync_dir(self.directory)
        return written

    def flush(self) -> int:
        """Deliver everything pending; return how many replies were written."""
        total = 0
        with self._lock:
            while True:
                # Claimed: another instance on the database never writes the same rows.
                pending = self.store.outbox.claim_due(CLAIM)
                if pending:
                    self.store.outbox.mark_delivered(self.deliver(pending))
                    total += len(pending)
                if len(pending) < CLAIM:  # that was all that was due
                    return total

    def notify(self) -> None:
        """New rows are committed: write them now, in this thread."""
        self.flush()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver what a previous run left pending, then wait for ``stop``."""
        delivered = await asyncio.to_thread(self.flush)
        if delivered:
            log.info("pending_replies_delivered", count=delivered)
        await stop.wait()
