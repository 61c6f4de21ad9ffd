"""``SpoolInbox``: the spool as an ``Inbox`` service of the daemon.

On start it takes the spool's lock (a second daemon on the same spool is refused: exit 78),
watches ``incoming/`` (inotify, else a scan every ``poll_interval``), recovers ``work/``, then
claims files and hands them to the intake, up to ``intake.capacity`` at once (its workers
process them side by side and commit them in batches); each file is moved to ``processed/``
once its own message is committed (or to ``bad/`` when processing failed). It wakes when a file
lands or one in hand is finished, not on a timer.

A file larger than the largest message is read only in part (``gateway.inbox.reading``) and
answered as too large. While the database refuses commits, or the disk refuses a move, it tries
again with backoff; on stop the file stays in ``work/`` and is recovered on the next start.
On stop, no more files are claimed and those in hand are finished (bounded by the capacity,
within the drain time).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
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
        in_hand: set[asyncio.Task[None]] = set()
        try:
            if not self.once and (watch := spool.start_watching()) is not None:
                watcher = asyncio.create_task(watch.run(changed), name="spool-watch")
            waiting = deque(self._recovered())
            room = max(1, self.intake.capacity)
            while not stop.is_set():
                changed.clear()
                free = room - len(in_hand)
                batch = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                if not waiting and len(batch) < free:
                    batch += spool.claim(min(BATCH, free - len(batch)))
                for item in batch:
                    in_hand.add(asyncio.create_task(self._take(item, stop)))
                if self.once and not batch and not waiting:
                    if not in_hand:
                        return
                    await _wait(stop, None, in_hand, at_most=None)
                elif len(in_hand) >= room:
                    await _wait(stop, None, in_hand, at_most=None)  # full: until one is done
                elif not batch:
                    await _wait(stop, changed, in_hand, at_most=spool.seconds_to_next())
                _raise_failures(in_hand)
        finally:
            # Stopping (or failing): the files in hand are finished, within the drain time.
            if in_hand:
                await asyncio.wait(in_hand)
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            spool.stop_watching()
            spool.unlock()
        _raise_failures(in_hand)

    def _recovered(self) -> list[Claimed]:
        again, parked = self.spool.recover()
        for path in parked:
            log.error("spool_file_parked", file=path.name, where=str(path.parent))
        if again:
            log.warning("spool_recovering", files=len(again))
        return again

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


async def _wait(
    stop: asyncio.Event,
    changed: asyncio.Event | None,
    in_hand: set[asyncio.Task[None]],
    *,
    at_most: float | None,
) -> None:
    """Until ``stop``, a change in ``incoming/`` (if ``changed`` is given), a file in hand
    finished, or ``at_most`` seconds, whichever is first."""
    events = [stop] if changed is None else [stop, changed]
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(
            [*waits, *in_hand], timeout=at_most, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in waits:
            waiter.cancel()


def _raise_failures(tasks: set[asyncio.Task[None]]) -> None:
    """Forget the finished tasks; re-raise the first one's error (a broken spool directory
    stops the service, as it did when files were taken one at a time)."""
    done = {task for task in tasks if task.done()}
    tasks -= done
    for task in done:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
