"""Which files in ``incoming/`` may be taken now: readiness, kept up to date without rescanning.

The spool learns about files in two ways. A watcher (``spool_watch``, inotify) reports what
happens to each name as it happens; a scan of the directory (at start, after the watcher lost
events, or where no watcher can run) reports what is there. ``Readiness`` folds both into one
queue, so taking the next file costs O(1) however many files wait.

When is a file complete? The drop protocol (README, "Where things go") is: write under a name
starting with ``.`` or ending in ``.tmp``, then rename. So:

- a file **renamed into** ``incoming/`` is ready at once;
- a file **written in place** is ready once every handle the watcher saw opened on it is closed
  and nothing touched it for ``settle`` seconds after the last close (a writer that holds the
  file open, however slowly it writes, is never taken half-written);
- a file only **seen by a scan** is ready once its size and modification time stood still for
  ``settle`` seconds (checked again when it is taken);
- a **temporary** name (dot file, ``*.tmp``, ``*.part``) is never taken; once nothing touched it
  for ``abandoned_after`` seconds it is handed out too, for the spool to park as abandoned.

Not thread-safe: the event loop owns it (the watcher and ``Spool.claim`` both run there).
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

#: Names a sender writes before renaming (and the spool's own sidecar files): never taken.
TEMPORARY_SUFFIXES: Final = (".tmp", ".part", ".recoveries", ".reason")


def is_temporary(name: str) -> bool:
    """A name the drop protocol uses while a file is being written."""
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


@dataclass(slots=True)
class _Entry:
    temporary: bool
    opens: int = 0  # handles the watcher saw opened and not yet closed
    due: float | None = None  # monotonic time it may be taken if nothing happens before
    ready: bool = False
    scanned: bool = False  # known from a scan only: check size and mtime again when taken
    signature: tuple[int, int] = (-1, -1)  # (size, mtime_ns) from the last scan


@dataclass(frozen=True, slots=True)
class Seen:
    """One directory entry as a scan saw it."""

    name: str
    size: int
    mtime_ns: int


class Readiness:
    """The names in ``incoming/`` and which of them may be taken, oldest first."""

    def __init__(
        self,
        settle: float,
        abandoned_after: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settle = settle
        self.abandoned_after = abandoned_after
        self._clock = clock
        self._wall = wall
        self._entries: dict[str, _Entry] = {}
        self._ready: deque[str] = deque()
        self._due: list[tuple[float, str]] = []  # a heap; stale pairs are skipped lazily
        self._temporary = 0  # how many entries are temporary names (kept, not counted: the
        # metrics thread reads ``waiting`` while the event loop changes the entries)

    def __len__(self) -> int:
        """Names known in ``incoming/`` (temporary ones included)."""
        return len(self._entries)

    def waiting(self) -> int:
        """Files waiting to be taken (temporary names left out). Safe from any thread."""
        return max(0, len(self._entries) - self._temporary)

    # --- what the watcher reports ---------------------------------------------------------------

    def created(self, name: str) -> None:
        """A new name (a file being written, a directory, a symlink, a FIFO)."""
        entry = self._fresh(name)
        self._settle(name, entry)

    def opened(self, name: str) -> None:
        entry = self._entries.get(name) or self._fresh(name)
        entry.opens += 1
        if entry.ready:  # a reader (a virus scanner, a backup): wait until it is done
            entry.ready = False
            entry.due = self._clock()

    def modified(self, name: str) -> None:
        entry = self._entries.get(name) or self._fresh(name)
        entry.ready = False
        entry.scanned = False
        entry.due = None
        if entry.opens == 0:  # opened before we watched: fall back to quiet time
            self._settle(name, entry)

    def closed(self, name: str, *, wrote: bool) -> None:
        entry = self._entries.get(name)
        if entry is None:
            return  # opened before we watched and not written since: the scan has it
        entry.opens = max(0, entry.opens - 1)
        if entry.opens:
            return
        if wrote or entry.due is None:
            self._settle(name, entry)  # quiet for ``settle`` seconds after the last close
        else:  # a reader closed: what was due stays due
            heapq.heappush(self._due, (entry.due, name))

    def arrived(self, name: str) -> None:
        """Renamed into ``incoming/``: complete by the drop protocol."""
        entry = self._fresh(name)
        if entry.temporary:
            self._settle(name, entry)
        else:
            self._make_ready(name, entry)

    def gone(self, name: str) -> None:
        """Renamed away or deleted (by a sender, another instance, or our own claim)."""
        self._drop(name)

    # --- what a scan reports ------------------------------------------------------------------

    def scanned(self, seen: Iterable[Seen]) -> None:
        """Merge a full scan: new names are added oldest first, vanished ones forgotten, and a
        scanned file whose size or modification time changed settles again."""
        present: set[str] = set()
        for item in sorted(seen, key=lambda s: (s.mtime_ns, s.name)):
            present.add(item.name)
            signature = (item.size, item.mtime_ns)
            entry = self._entries.get(item.name)
            if entry is None:
                entry = self._fresh(item.name)
                entry.scanned, entry.signature = True, signature
                self._settle(name=item.name, entry=entry, mtime_ns=item.mtime_ns)
            elif entry.scanned and entry.signature != signature:
                entry.signature, entry.ready = signature, False
                self._settle(name=item.name, entry=entry)
        for name in [name for name in self._entries if name not in present]:
            self._drop(name)

    # --- taking -------------------------------------------------------------------------------

    def take(self) -> str | None:
        """The next name that may be taken, or None. The caller checks it (``recheck``)."""
        self._promote()
        while self._ready:
            name = self._ready.popleft()
            entry = self._entries.get(name)
            if entry is not None and entry.ready:
                entry.ready = False
                return name
        return None

    def is_temporary(self, name: str) -> bool:
        entry = self._entries.get(name)
        return entry.temporary if entry is not None else is_temporary(name)

    def recheck(self, name: str, size: int, mtime_ns: int) -> bool:
        """Called with what ``lstat`` says of a taken name: True if it may really be taken now,
        else it goes back to settling (it changed, or has not been quiet long enough)."""
        entry = self._entries.get(name) or self._fresh(name)
        quiet_for = self._wall() - mtime_ns / 1e9
        wait = (self.abandoned_after if entry.temporary else self.settle) - quiet_for
        changed = entry.scanned and entry.signature != (size, mtime_ns)
        if (entry.scanned or entry.temporary) and (changed or wait > 0):
            entry.signature = (size, mtime_ns)
            self._settle(name, entry, delay=max(wait, self.settle if changed else 0.0))
            return False
        return True

    def forget(self, name: str) -> None:
        """Taken (or parked): no longer in ``incoming/``."""
        self._drop(name)

    def put_back(self, name: str) -> None:
        """A taken name could not be moved this time: offer it again after ``settle``."""
        entry = self._entries.get(name) or self._fresh(name)
        self._settle(name, entry, delay=max(self.settle, 1.0))

    def seconds_to_next(self) -> float | None:
        """Until the next settling name may be ready (0 if one is ready), None if none."""
        if self._ready:
            return 0.0
        while self._due:
            due, name = self._due[0]
            entry = self._entries.get(name)
            if entry is not None and entry.due == due:
                return max(0.0, due - self._clock())
            heapq.heappop(self._due)
        return None

    # --- internals ----------------------------------------------------------------------------

    def _fresh(self, name: str) -> _Entry:
        self._drop(name)
        entry = _Entry(temporary=is_temporary(name))
        self._entries[name] = entry
        self._temporary += entry.temporary
        return entry

    def _drop(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is not None:
            self._temporary -= entry.temporary

    def _settle(
        self,
        name: str,
        entry: _Entry,
        *,
        at_once: bool = False,
        delay: float | None = None,
        mtime_ns: int | None = None,
    ) -> None:
        now = self._clock()
        wait = self.abandoned_after if entry.temporary else self.settle
        if at_once:
            wait = 0.0
        elif delay is not None:
            wait = delay
        elif mtime_ns is not None:  # a scan: the time since its last change counts
            wait = max(0.0, wait - (self._wall() - mtime_ns / 1e9))
        entry.ready = False
        if wait <= 0 and entry.opens == 0:
            self._make_ready(name, entry)
            return
        entry.due = now + wait
        heapq.heappush(self._due, (entry.due, name))

    def _make_ready(self, name: str, entry: _Entry) -> None:
        entry.due = None
        if not entry.ready:
            entry.ready = True
            self._ready.append(name)

    def _promote(self) -> None:
        now = self._clock()
        while self._due and self._due[0][0] <= now:
            due, name = heapq.heappop(self._due)
            entry = self._entries.get(name)
            if entry is not None and entry.due == due and entry.opens == 0:
                self._make_ready(name, entry)
