"""The file-drop spool inbox: crash-safe claiming of dropped files.

Layout under the spool directory::

    incoming/   senders drop files here (write to a dot-file or *.tmp, then rename)
    work/       claimed files, by atomic rename, while they are processed
    processed/  files whose message (and replies) are committed to the database
    bad/        files that crashed the daemon too often, with a .reason file beside them

A claimed file gets a unique name; that name is the intake's ``source_ref`` in the database. After
a crash, files left in ``work/`` are recovered on start with a counter (kept beside the file):
if the database already has the intake the file is simply finished, otherwise it is processed
again; after ``max_recoveries`` it goes to ``bad/`` for a person to look at.

``SpoolInbox`` is the spool's ``Inbox`` service: it claims files in small batches, hands each to
the intake, and moves it to ``processed/`` once committed (or to ``bad/`` when processing failed).
On stop, files claimed but not started go back to ``incoming/``; the one in hand is finished.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import SpoolConfig
from gateway.errors import StorageError
from gateway.files import fsync_dir, write_atomically
from gateway.logs import get_logger
from gateway.records import Outcome
from gateway.transports import Intake

log = get_logger("spool")

# Files claimed per look into incoming/: small, because a claimed file waits for the ones
# claimed before it (latency), while claiming again costs only ~0.1 ms per file.
BATCH = 10
#: The longest wait between tries while the database refuses commits.
MAX_STORAGE_BACKOFF = 60.0

_RECOVERIES_SUFFIX = ".recoveries"
_REASON_SUFFIX = ".reason"
_IGNORED_SUFFIXES = (".tmp", ".part", _RECOVERIES_SUFFIX, _REASON_SUFFIX)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A spool file this process owns until ``done`` or ``park``."""

    path: Path
    original_name: str
    recoveries: int = 0

    @property
    def source_ref(self) -> str:
        return self.path.name


class Spool:
    """Claims, finishes and parks files in the spool directory."""

    def __init__(self, config: SpoolConfig) -> None:
        self.config = config
        self.settle_seconds = config.settle_seconds
        for d in (config.incoming, config.work, config.processed, config.bad):
            d.mkdir(parents=True, exist_ok=True)

    def incoming_count(self) -> int:
        return sum(1 for _ in self._candidates())

    def _candidates(self) -> list[Path]:
        now = time.time()
        found: list[tuple[float, str, Path]] = []
        with os.scandir(self.config.incoming) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith(".") or name.endswith(_IGNORED_SUFFIXES):
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                mtime = entry.stat(follow_symlinks=False).st_mtime
                if now - mtime < self.settle_seconds:
                    continue  # possibly still being written by a sender that does not rename
                found.append((mtime, name, Path(entry.path)))
        found.sort()
        return [p for _, _, p in found]

    def claim(self, limit: int) -> list[Claimed]:
        """Take up to ``limit`` files from ``incoming/``, oldest first, by atomic rename."""
        claimed: list[Claimed] = []
        for path in self._candidates()[:limit]:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            target = self.config.work / f"{stamp}-{uuid.uuid4().hex[:8]}--{path.name}"
            try:
                path.rename(target)
            except FileNotFoundError:
                continue  # another instance claimed it first
            claimed.append(Claimed(target, path.name))
        if claimed:
            fsync_dir(self.config.work)
        return claimed

    def recover(self) -> tuple[list[Claimed], list[Path]]:
        """Files left in ``work/`` by a crash: those to process again, and those parked now."""
        again: list[Claimed] = []
        parked: list[Path] = []
        for path in sorted(self.config.work.iterdir()):
            if path.name.endswith(_IGNORED_SUFFIXES) or not path.is_file():
                continue
            counter = path.with_name(path.name + _RECOVERIES_SUFFIX)
            try:
                count = int(counter.read_text(encoding="ascii").strip() or "0") + 1
            except (FileNotFoundError, ValueError):
                count = 1
            original = path.name.split("--", 1)[-1]
            if count > self.config.max_recoveries:
                self.park(
                    Claimed(path, original, count - 1),
                    f"recovered {count - 1} times after crashes while processing it",
                )
                parked.append(self.config.bad / path.name)
                continue
            write_atomically(counter, str(count).encode("ascii"))
            again.append(Claimed(path, original, count))
        return again, parked

    def done(self, item: Claimed) -> None:
        """The message is committed: move the file to ``processed/``.

        Not made durable by a directory fsync: should the move be lost in a power cut, the file
        is found in ``work/`` at start, its intake committed, and it is simply finished then."""
        target = self.config.processed / item.path.name
        item.path.replace(target)
        item.path.with_name(item.path.name + _RECOVERIES_SUFFIX).unlink(missing_ok=True)

    def release(self, item: Claimed) -> None:
        """Give back a claimed file that was never started (on shutdown)."""
        target = self.config.incoming / item.original_name
        if target.exists():
            target = self.config.incoming / f"{uuid.uuid4().hex[:8]}-{item.original_name}"
        item.path.replace(target)

    def park(self, item: Claimed, reason: str) -> None:
        """Move a file an operator must look at to ``bad/``, with the reason beside it."""
        target = self.config.bad / item.path.name
        write_atomically(target.with_name(target.name + _REASON_SUFFIX), reason.encode())
        item.path.replace(target)
        item.path.with_name(item.path.name + _RECOVERIES_SUFFIX).unlink(missing_ok=True)
        fsync_dir(self.config.bad)

    def requeue_bad(self) -> list[Path]:
        """Put every parked file back into ``incoming/`` (the operator's ``unshunt``)."""
        moved: list[Path] = []
        for path in sorted(self.config.bad.iterdir()):
            if path.name.endswith(_IGNORED_SUFFIXES) or not path.is_file():
                continue
            original = path.name.split("--", 1)[-1]
            target = self.config.incoming / original
            if target.exists():
                target = self.config.incoming / f"{uuid.uuid4().hex[:8]}-{original}"
            path.replace(target)
            path.with_name(path.name + _REASON_SUFFIX).unlink(missing_ok=True)
            moved.append(target)
        return moved


async def _first_of(tasks: set[asyncio.Task[None]], stop: asyncio.Event, seconds: float) -> None:
    """Wait until a task in ``tasks`` is done, ``stop`` is set, or ``seconds`` passed."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({*tasks, stopped}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()


def _raise_failures(tasks: set[asyncio.Task[None]]) -> None:
    """Forget the finished tasks; re-raise the first one's error (a broken spool directory
    stops the service, as it did when files were taken one at a time)."""
    done = {task for task in tasks if task.done()}
    tasks -= done
    for task in done:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error


class SpoolInbox:
    """Takes files from the spool into the intake until stopped (``once``: until it is empty)."""

    name = "spool"

    def __init__(self, spool: Spool, intake: Intake, *, once: bool = False) -> None:
        self.spool = spool
        self.intake = intake
        self.once = once

    async def run(self, stop: asyncio.Event) -> None:
        """Recover ``work/``, then claim and hand on files until ``stop`` is set.

        Up to ``intake.capacity`` files are in hand at once (the intake's workers process them
        side by side and commit them in batches); each is moved away when its own commit is
        done. On stop, no more files are claimed and those in hand are finished."""
        spool = self.spool
        again, parked = spool.recover()
        for path in parked:
            log.error("spool_file_parked", file=path.name, where=str(path.parent))
        if again:
            log.warning("spool_recovering", files=len(again))
        waiting = deque(again)
        in_hand: set[asyncio.Task[None]] = set()
        room = max(1, self.intake.capacity)
        try:
            while not stop.is_set():
                free = room - len(in_hand)
                batch = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                # A look into incoming/ costs a scan of it: take a batch's worth at a time.
                if not waiting and (free - len(batch) >= min(BATCH, room) or not in_hand):
                    batch += spool.claim(min(BATCH, free - len(batch)))
                for item in batch:
                    in_hand.add(asyncio.create_task(self._take(item, stop)))
                if self.once and not in_hand and not waiting:
                    return
                if not batch or len(in_hand) >= room:
                    await _first_of(in_hand, stop, spool.config.poll_interval)
                _raise_failures(in_hand)
        finally:
            # Stopping (or failing): the files in hand are finished, within the drain time.
            if in_hand:
                await asyncio.wait(in_hand)
                _raise_failures(in_hand)

    async def _take(self, item: Claimed, stop: asyncio.Event) -> None:
        """One file: commit it through the intake, then move it to ``processed/`` (or park it).

        While the database refuses commits, try again with backoff; on stop the file stays in
        ``work/`` and is recovered on the next start."""
        backoff = 1.0
        raw = item.path.read_bytes()
        while True:
            try:
                outcome = await self.intake(
                    raw,
                    source="spool",
                    source_ref=item.source_ref,
                    source_name=item.original_name,
                )
            except StorageError:
                log.exception("storage_error_retrying", retry_in=backoff)
                if stop.is_set():
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_STORAGE_BACKOFF)
                continue
            if outcome is Outcome.FAILED:
                reason = "processing failed; the raw bytes are in the database"
                await asyncio.to_thread(self.spool.park, item, reason)
            else:
                await asyncio.to_thread(self.spool.done, item)
            return
