"""``SpoolInbox``: the spool as an ``Inbox`` service of the daemon.

On start it takes the spool's lock (a second daemon on the same spool is refused: exit 78),
watches ``incoming/`` (inotify, else a scan every ``poll_interval``), recovers ``work/``, then
claims files in small batches, hands each to the intake and moves it to ``processed/`` once
committed (or to ``bad/`` when processing failed). It wakes when a file lands, not on a timer.

A file larger than the largest message is read only in part (``gateway.inbox.reading``) and
answered as too large. While the database refuses commits, or the disk refuses a move, it tries
again with backoff; on stop the file stays in ``work/`` and is recovered on the next start.
On stop, files claimed but not started go back to ``incoming/``; the one in hand is finished.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from gateway.errors import StorageError
from gateway.inbox.reading import is_oversized, read_bounded
from gateway.inbox.spool import BATCH, Claimed, Spool
from gateway.logs import get_logger
from gateway.records import Outcome
from gateway.transports import Intake
from gateway.validation.safe_xml import DEFAULT_MAX_XML_BYTES

log = get_logger("spool")

#: The longest wait between tries while the database or the disk refuses.
MAX_BACKOFF = 60.0
#: Kept for callers of the old name.
MAX_STORAGE_BACKOFF = MAX_BACKOFF


class SpoolInbox:
    """Takes files from the spool into the intake until stopped (``once``: until it is empty)."""

    name = "spool"

    def __init__(
        self,
        spool: Spool,
        intake: Intake,
        *,
        once: bool = False,
        max_bytes: int = DEFAULT_MAX_XML_BYTES,
    ) -> None:
        self.spool = spool
        self.intake = intake
        self.once = once
        #: Larger files are refused by their size, read only in part.
        self.max_bytes = max_bytes

    async def run(self, stop: asyncio.Event) -> None:
        """Lock the spool, recover ``work/``, then claim and hand on files until ``stop``."""
        spool = self.spool
        spool.lock()
        changed = asyncio.Event()
        watcher: asyncio.Task[None] | None = None
        try:
            if not self.once and (watch := spool.start_watching()) is not None:
                watcher = asyncio.create_task(watch.run(changed), name="spool-watch")
            await self._recover(stop)
            while not stop.is_set():
                changed.clear()
                batch = spool.claim(BATCH)
                for position, item in enumerate(batch):
                    if stop.is_set():
                        # Claimed but not started: back to incoming/, untouched.
                        for unstarted in batch[position:]:
                            spool.release(unstarted)
                        break
                    await self._take(item, stop)
                if stop.is_set() or (self.once and not batch):
                    return
                if not batch:
                    await _wait(stop, changed, at_most=spool.seconds_to_next())
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            spool.stop_watching()
            spool.unlock()

    async def _recover(self, stop: asyncio.Event) -> None:
        again, parked = self.spool.recover()
        for path in parked:
            log.error("spool_file_parked", file=path.name, where=str(path.parent))
        if again:
            log.warning("spool_recovering", files=len(again))
        for item in again:
            if stop.is_set():
                return
            await self._take(item, stop)

    async def _take(self, item: Claimed, stop: asyncio.Event) -> None:
        """One file: commit it through the intake, then move it to ``processed/`` (or park it)."""
        try:
            raw = await self._read(item)
        except OSError as exc:
            reason = f"cannot be read: {exc.strerror or exc}"
            park = lambda: self.spool.park(item, reason, kind="unreadable")  # noqa: E731
            await self._retrying(stop, "park", park)
            return
        backoff = 1.0
        while True:
            try:
                outcome = await self.intake(
                    raw,
                    source="spool",
                    source_ref=item.source_ref,
                    source_name=item.shown_name,
                )
            except StorageError:
                log.exception("storage_error_retrying", retry_in=backoff)
                if stop.is_set():
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            break
        if outcome is Outcome.FAILED:
            reason = "processing failed; the raw bytes are in the database"
            await self._retrying(stop, "park", lambda: self.spool.park(item, reason))
        else:
            await self._retrying(stop, "done", lambda: self.spool.done(item))

    async def _read(self, item: Claimed) -> bytes:
        if is_oversized(item.path, self.max_bytes):
            # Hashing a huge file takes a while: off the event loop.
            return await asyncio.to_thread(read_bounded, item.path, self.max_bytes)
        return read_bounded(item.path, self.max_bytes)

    async def _retrying(self, stop: asyncio.Event, what: str, move: Callable[[], None]) -> None:
        """Move a file, trying again with backoff while the disk refuses (full, failing). On
        stop it stays in ``work/``; the next start finishes it (its intake is committed)."""
        backoff = 1.0
        while True:
            try:
                await asyncio.to_thread(move)
            except FileNotFoundError:
                log.error("spool_file_missing", action=what)
                return
            except OSError as exc:
                log.error("spool_move_failed", action=what, error=str(exc), retry_in=backoff)
                if stop.is_set():
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            return


async def _wait(stop: asyncio.Event, changed: asyncio.Event, *, at_most: float) -> None:
    """Until ``stop``, a change in ``incoming/`` or ``at_most`` seconds, whichever is first."""
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(changed.wait())]
    try:
        await asyncio.wait(waits, timeout=at_most, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waits:
            waiter.cancel()
