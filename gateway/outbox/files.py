"""The file outbox of the embedded default: each reply becomes a file, written atomically.

Replies are rows in the database first (written in the same transaction as the decision); this
writer delivers pending rows and marks them delivered. A reply's file name is fixed when the row
is made, so delivering a row again after a crash rewrites the same file with the same bytes: a
restart never loses a reply and never doubles one.
"""

from __future__ import annotations

from pathlib import Path

from gateway.files import fsync_dir, write_atomically
from gateway.records import PendingReply
from gateway.store import Store


class FileOutbox:
    """Writes pending replies into ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
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

    def flush(self, store: Store) -> int:
        """Deliver everything pending in ``store``; return how many replies were written."""
        total = 0
        while True:
            pending = store.outbox.pending_replies()
            if not pending:
                return total
            store.outbox.mark_delivered(self.deliver(pending))
            total += len(pending)
