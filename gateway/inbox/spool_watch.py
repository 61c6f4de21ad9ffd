"""Watching ``incoming/`` with inotify, so the spool reacts to a file as it lands.

``asyncinotify`` (see README, dependency notes) reads the kernel's events on the event loop;
each is handed to the spool's ``Readiness`` (opened, written, closed, renamed in or away), and a
waiter is woken. Where inotify cannot be had (not Linux, the watch limit reached, a file system
without it) ``start_watch`` returns None and the spool scans every ``poll_interval`` instead.

When the kernel's queue overflows, events are lost: the watcher then asks for one full scan,
which brings ``Readiness`` up to date again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from asyncinotify import Event, Inotify, Mask

from gateway.inbox.spool_ready import Readiness
from gateway.logs import get_logger

log = get_logger("spool")

_MASK = (
    Mask.CREATE
    | Mask.OPEN
    | Mask.MODIFY
    | Mask.CLOSE_WRITE
    | Mask.CLOSE_NOWRITE
    | Mask.MOVED_TO
    | Mask.MOVED_FROM
    | Mask.DELETE
    | Mask.DELETE_SELF
    | Mask.MOVE_SELF
    | Mask.ONLYDIR
)


class IncomingWatch:
    """inotify events on one directory, folded into a ``Readiness``."""

    def __init__(self, inotify: Inotify, readiness: Readiness) -> None:
        self._inotify = inotify
        self._readiness = readiness
        #: Set by the watcher when events were lost: the spool scans once, then clears it.
        self.needs_scan = False
        #: False once the watched directory is gone or moved: the spool falls back to scans.
        self.alive = True

    def close(self) -> None:
        self._inotify.close()

    async def run(self, changed: asyncio.Event) -> None:
        """Read events until cancelled; set ``changed`` after each batch."""
        async for event in self._inotify:
            self._apply(event)
            changed.set()
            if not self.alive:
                return

    def _apply(self, event: Event) -> None:
        mask = event.mask
        if Mask.Q_OVERFLOW in mask:
            log.warning("spool_watch_overflow", action="scanning incoming/ once")
            self.needs_scan = True
            return
        if mask & (Mask.DELETE_SELF | Mask.MOVE_SELF | Mask.IGNORED):
            log.error("spool_watch_lost", reason="incoming/ was removed or moved")
            self.alive = False
            self.needs_scan = True
            return
        if event.name is None:
            return  # the directory itself (opened for a listing)
        name = str(event.name)
        readiness = self._readiness
        if Mask.MOVED_TO in mask:
            readiness.arrived(name)
        elif mask & (Mask.MOVED_FROM | Mask.DELETE):
            readiness.gone(name)
        elif Mask.CREATE in mask:
            readiness.created(name)
        elif Mask.OPEN in mask:
            readiness.opened(name)
        elif Mask.MODIFY in mask:
            readiness.modified(name)
        elif Mask.CLOSE_WRITE in mask:
            readiness.closed(name, wrote=True)
        elif Mask.CLOSE_NOWRITE in mask:
            readiness.closed(name, wrote=False)


def start_watch(
    directory: Path, readiness: Readiness, *, inotify: Callable[[], Inotify] = Inotify
) -> IncomingWatch | None:
    """Watch ``directory`` (call before the first scan, so no file falls between the two), or
    None where inotify is not available."""
    try:
        handle = inotify()
    except OSError as exc:  # no inotify here, or too many instances
        log.warning("spool_watch_unavailable", error=str(exc), fallback="polling")
        return None
    try:
        handle.add_watch(directory, _MASK)
    except OSError as exc:  # the watch limit, or a file system without inotify
        handle.close()
        log.warning("spool_watch_unavailable", error=str(exc), fallback="polling")
        return None
    return IncomingWatch(handle, readiness)
