"""The file-drop spool inbox: crash-safe claiming of dropped files.

Layout under the spool directory::

    incoming/   senders drop files here (write to a dot-file or *.tmp, then rename)
    work/       claimed files, by atomic rename, while they are processed
    processed/  files whose message (and replies) are committed to the database
    bad/        files parked for a person, each with a .reason file beside it
    .lock       held by the daemon(s) using this spool (``spool_lock``)

A claimed file gets a unique, safe name (``spool_names``); that name is the intake's
``source_ref`` in the database. After a crash, files left in ``work/`` are recovered on start
with a counter (kept beside the file): if the database already has the intake the file is
simply finished, otherwise it is processed again; after ``max_recoveries`` it goes to ``bad/``.

Which files may be taken is known without rescanning ``incoming/`` (``spool_ready``, fed by
inotify through ``spool_watch``, or by a scan where inotify is not available): taking a file
costs O(1) however many wait. One bad file never stops the others: a name too long once
prefixed is shortened, a name that is not UTF-8 is shown escaped, a file that vanishes is
forgotten, and symlinks, FIFOs, sockets, devices, directories and abandoned temporary files are
parked in ``bad/`` with a reason, a log line and a count (``on_parked``), never opened.

``SpoolInbox`` (``spool_service``) is the spool's ``Inbox`` service.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.config import SpoolConfig
from gateway.files import fsync_dir, write_atomically
from gateway.inbox.spool_lock import DirectoryLock, lock_spool
from gateway.inbox.spool_names import NAME_MAX, claimed_name, original_of, shown_name
from gateway.inbox.spool_ready import Readiness, Seen, is_temporary
from gateway.inbox.spool_watch import IncomingWatch, start_watch
from gateway.logs import get_logger

log = get_logger("spool")

# Files claimed per look into incoming/: small, because a claimed file waits for the ones
# claimed before it (latency); claiming again costs O(1) per file.
BATCH: Final = 10
#: A temporary file (dot file, ``*.tmp``) nobody touched for this long is parked as abandoned.
ABANDONED_AFTER: Final = 24 * 3600.0
#: With inotify, a full scan still runs this often when nothing is ready (a safety net for
#: file systems that do not report every change, such as network mounts).
RESCAN_EVERY: Final = 60.0

_RECOVERIES_SUFFIX = ".recoveries"
_REASON_SUFFIX = ".reason"
_OWNER_LOCK = ".owner"

#: What ``on_parked`` is told, per kind of file that is not a regular one.
_KINDS: Final = (
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "device"),
    (stat.S_ISBLK, "device"),
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A spool file this process owns until ``done`` or ``park``."""

    path: Path
    original_name: str  # as it was in incoming/ (after a recovery: as shown)
    recoveries: int = 0

    @property
    def source_ref(self) -> str:
        return self.path.name

    @property
    def shown_name(self) -> str:
        """The sender's name, safe to store and log."""
        return shown_name(self.original_name)


class Spool:
    """Claims, finishes and parks files in the spool directory."""

    def __init__(
        self,
        config: SpoolConfig,
        *,
        on_parked: Callable[[str], None] = lambda reason: None,
        abandoned_after: float = ABANDONED_AFTER,
    ) -> None:
        self.config = config
        #: Told the reason of each parked file (a metric counter in the daemon).
        self.on_parked = on_parked
        for d in (config.incoming, config.work, config.processed, config.bad):
            d.mkdir(parents=True, exist_ok=True)
        self.readiness = Readiness(config.settle_seconds, abandoned_after)
        self.watch: IncomingWatch | None = None
        #: Where this process keeps what it claimed: ``work/`` itself, or (in a shared spool)
        #: a subdirectory of its own, set by ``lock``.
        self.work = config.work
        self._last_scan = -RESCAN_EVERY
        self._locks: list[DirectoryLock] = []
        self._stuck: set[str] = set()  # names that could not be moved, logged once

    @property
    def settle_seconds(self) -> float:
        return self.readiness.settle

    @settle_seconds.setter
    def settle_seconds(self, value: float) -> None:
        self.readiness.settle = value

    # --- the daemon's hold on the spool ---------------------------------------------------------

    def lock(self) -> None:
        """Refuse (``ConfigurationError``, exit 78) if another daemon uses this spool without
        sharing it; in a shared spool, make this instance's own ``work/`` subdirectory."""
        self._locks.append(lock_spool(self.config.directory, shared=self.config.shared))
        if self.config.shared:
            name = f"{os.uname().nodename}-{os.getpid()}-{os.urandom(3).hex()}"
            # Made under a dot name (which no instance adopts) and locked before it is given
            # its own: an instance recovering orphans never finds it unlocked.
            making = self.config.work / f".{name}"
            making.mkdir()
            held = DirectoryLock.try_take(making / _OWNER_LOCK)
            assert held is not None  # a directory nobody else knows yet
            self._locks.append(held)
            self.work = self.config.work / name
            making.rename(self.work)

    def unlock(self) -> None:
        for held in reversed(self._locks):
            held.release()
        self._locks.clear()
        own, self.work = self.work, self.config.work
        if own != self.work and [p.name for p in own.iterdir()] == [_OWNER_LOCK]:
            (own / _OWNER_LOCK).unlink(missing_ok=True)
            _remove_if_empty(own)

    def start_watching(self) -> IncomingWatch | None:
        """Watch ``incoming/`` (inotify) from now on; None where that is not available."""
        self.watch = start_watch(self.config.incoming, self.readiness)
        self._last_scan = -RESCAN_EVERY  # the first claim scans what was there before
        return self.watch

    def stop_watching(self) -> None:
        if self.watch is not None:
            self.watch.close()
            self.watch = None

    # --- incoming/ ------------------------------------------------------------------------------

    def incoming_count(self) -> int:
        """Files waiting in ``incoming/`` (temporary names left out). Safe from any thread."""
        if self.watch is not None:
            return self.readiness.waiting()
        return sum(1 for seen in _scan(self.config.incoming) if not is_temporary(seen.name))

    def seconds_to_next(self) -> float:
        """How long the inbox may wait before ``claim`` could find something new."""
        until = self.readiness.seconds_to_next()
        if self.watch is None or not self.watch.alive:
            interval = self.config.poll_interval
            return interval if until is None else min(until, interval)
        return RESCAN_EVERY if until is None else min(until, RESCAN_EVERY)

    def claim(self, limit: int) -> list[Claimed]:
        """Take up to ``limit`` ready files from ``incoming/``, oldest first, by atomic rename.
        Files that are not regular files, or abandoned temporary ones, are parked instead."""
        self._scan_if_due()
        claimed: list[Claimed] = []
        while len(claimed) < limit:
            name = self.readiness.take()
            if name is None:
                break
            item = self._take(name)
            if item is not None:
                claimed.append(item)
        if claimed:
            fsync_dir(self.work)
        return claimed

    def _scan_if_due(self) -> None:
        watch, readiness = self.watch, self.readiness
        watching = watch is not None and watch.alive
        if watch is not None and watch.needs_scan:
            watch.needs_scan = False
        elif readiness.seconds_to_next() == 0.0:
            return  # something is ready: no scan (this is what keeps claiming O(1))
        elif watching and time.monotonic() - self._last_scan < RESCAN_EVERY:
            return
        self._last_scan = time.monotonic()
        readiness.scanned(_scan(self.config.incoming))

    def _take(self, name: str) -> Claimed | None:
        path = self.config.incoming / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.readiness.forget(name)  # gone between the event (or scan) and now
            return None
        except OSError as exc:
            self._cannot_move(name, exc)
            return None
        if not self.readiness.recheck(name, st.st_size, st.st_mtime_ns):
            return None  # still changing, or not quiet for long enough yet
        if not stat.S_ISREG(st.st_mode):
            kind = next(label for test, label in _KINDS if test(st.st_mode))
            self._park_incoming(name, kind, f"not a regular file but a {kind}; never opened")
            return None
        if self.readiness.is_temporary(name):
            self._park_incoming(
                name, "abandoned", "a temporary file (dot file or *.tmp) nobody renamed or "
                f"changed for {self.readiness.abandoned_after:.0f} seconds",
            )
            return None
        target = self.work / claimed_name(name)
        try:
            path.rename(target)
        except FileNotFoundError:
            self.readiness.forget(name)  # another instance claimed it first
            return None
        except OSError as exc:
            self._cannot_move(name, exc)
            return None
        self.readiness.forget(name)
        self._stuck.discard(name)
        return Claimed(target, name)

    def _park_incoming(self, name: str, kind: str, reason: str) -> None:
        path = self.config.incoming / name
        target = self.config.bad / claimed_name(name)
        try:
            path.rename(target)
        except FileNotFoundError:
            self.readiness.forget(name)
            return
        except OSError as exc:
            self._cannot_move(name, exc)
            return
        self.readiness.forget(name)
        self._parked(target, kind, reason, shown_name(name))

    def _cannot_move(self, name: str, exc: OSError) -> None:
        """A name that cannot be taken or parked (permissions, a path too long for the file
        system, a read-only or failing disk): logged once, offered again later, never a crash."""
        if name not in self._stuck:
            self._stuck.add(name)
            log.error(
                "spool_file_stuck",
                file=shown_name(name),
                error=errno.errorcode.get(exc.errno or 0, str(exc.errno)),
                detail=exc.strerror,
                hint="a person must move or fix this file; it is tried again meanwhile",
            )
            self.on_parked("unclaimable")
        self.readiness.put_back(name)

    # --- work/ ----------------------------------------------------------------------------------

    def recover(self) -> tuple[list[Claimed], list[Path]]:
        """Files left in ``work/`` by a crash (ours, or a shared spool's instance that is gone):
        those to process again, and those parked now."""
        self._adopt_orphans()
        again: list[Claimed] = []
        parked: list[Path] = []
        for path in sorted(self.work.iterdir()):
            if _is_stale_counter(path):
                # Left by a run killed in between (its file finished, or the counter written).
                path.unlink(missing_ok=True)
                continue
            if path.name.endswith((_RECOVERIES_SUFFIX, _REASON_SUFFIX, ".tmp")):
                continue
            if path.name.startswith(".") or not _is_regular(path):
                continue
            counter = path.with_name(path.name + _RECOVERIES_SUFFIX)
            try:
                count = int(counter.read_text(encoding="ascii").strip() or "0") + 1
            except (FileNotFoundError, ValueError):
                count = 1
            item = Claimed(path, original_of(path.name), count)
            if count > self.config.max_recoveries:
                reason = f"recovered {count - 1} times after crashes while processing it"
                self.park(Claimed(path, item.original_name, count - 1), reason, kind="crashes")
                parked.append(self.config.bad / path.name)
                continue
            try:
                write_atomically(counter, str(count).encode("ascii"))
            except OSError as exc:  # a full disk: go on; at worst one recovery more is allowed
                log.error("spool_counter_not_written", file=path.name, error=str(exc))
            again.append(item)
        return again, parked

    def _adopt_orphans(self) -> None:
        """Move into our ``work/`` what a dead instance of a shared spool left claimed."""
        root = self.config.work
        sources = [root] if self.work != root else []
        for sub in sorted(root.iterdir()):
            if sub == self.work or sub.name.startswith(".") or not sub.is_dir() or sub.is_symlink():
                continue  # ours, one being made (see lock), or not a work directory
            held = DirectoryLock.try_take(sub / _OWNER_LOCK)
            if held is None:
                continue  # its instance is alive
            try:
                self._move_all(sub)
                (sub / _OWNER_LOCK).unlink(missing_ok=True)
                _remove_if_empty(sub)
            finally:
                held.release()
        for source in sources:
            self._move_all(source, files_only=True)

    def _move_all(self, source: Path, *, files_only: bool = False) -> None:
        for path in sorted(source.iterdir()):
            if path.name == _OWNER_LOCK or (files_only and not _is_regular(path)):
                continue
            try:
                path.rename(self.work / path.name)
            except FileNotFoundError:
                continue  # another instance adopted it first
        fsync_dir(self.work)

    def done(self, item: Claimed) -> None:
        """The message is committed: move the file to ``processed/``.

        Not made durable by a directory fsync: should the move be lost in a power cut, the file
        is found in ``work/`` at start, its intake committed, and it is simply finished then."""
        target = self.config.processed / item.path.name
        item.path.replace(target)
        item.path.with_name(item.path.name + _RECOVERIES_SUFFIX).unlink(missing_ok=True)

    def release(self, item: Claimed) -> None:
        """Give back a claimed file that was never started (on shutdown)."""
        target = _free_name(self.config.incoming, item.original_name)
        item.path.replace(target)

    def park(self, item: Claimed, reason: str, *, kind: str = "failed") -> None:
        """Move a file an operator must look at to ``bad/``, with the reason beside it."""
        target = self.config.bad / item.path.name
        item.path.replace(target)
        item.path.with_name(item.path.name + _RECOVERIES_SUFFIX).unlink(missing_ok=True)
        self._parked(target, kind, reason, item.shown_name)

    def _parked(self, target: Path, kind: str, reason: str, shown: str) -> None:
        try:
            write_atomically(target.with_name(target.name + _REASON_SUFFIX), reason.encode())
            fsync_dir(self.config.bad)
        except OSError as exc:  # the file is parked; only its note is missing
            log.error("spool_reason_not_written", file=target.name, error=str(exc))
        log.error("spool_file_parked", file=shown, parked_as=target.name, kind=kind, reason=reason)
        self.on_parked(kind)

    def parked_count(self) -> int:
        """Entries parked in ``bad/`` (any kind; their ``.reason`` notes not counted)."""
        return sum(
            1
            for path in self.config.bad.iterdir()
            if not path.name.endswith((_REASON_SUFFIX, ".tmp")) and not path.name.startswith(".")
        )

    def requeue_bad(self) -> list[Path]:
        """Put every parked regular file back into ``incoming/`` (the operator's ``unshunt``)."""
        moved: list[Path] = []
        for path in sorted(self.config.bad.iterdir()):
            if path.name.endswith((_REASON_SUFFIX, _RECOVERIES_SUFFIX, ".tmp")):
                continue
            if not _is_regular(path):
                continue  # a parked symlink, FIFO or directory stays for a person to remove
            target = _free_name(self.config.incoming, original_of(path.name))
            path.replace(target)
            path.with_name(path.name + _REASON_SUFFIX).unlink(missing_ok=True)
            moved.append(target)
        return moved


def _scan(directory: Path) -> list[Seen]:
    """Every entry of ``directory`` with its size and modification time (``lstat``: links
    are never followed); entries that vanish meanwhile are left out."""
    found: list[Seen] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found.append(Seen(entry.name, st.st_size, st.st_mtime_ns))
    return found


def _is_stale_counter(path: Path) -> bool:
    """At start, in our ``work/``: a recovery counter whose file is no longer there, or the temp
    file of a counter being written when a run ended."""
    name = path.name
    if name.endswith(_RECOVERIES_SUFFIX):
        return not os.path.lexists(path.with_name(name.removesuffix(_RECOVERIES_SUFFIX)))
    return name.startswith(".") and name.endswith(".tmp") and _RECOVERIES_SUFFIX + "." in name


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _free_name(directory: Path, name: str) -> Path:
    """``directory / name``, or a unique variant of the name when that is taken."""
    target = directory / name
    while os.path.lexists(target):
        variant = f"{os.urandom(4).hex()}-{name}".encode("utf-8", "surrogateescape")
        target = directory / os.fsdecode(variant[: NAME_MAX - len(_REASON_SUFFIX)])
    return target


def _remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (recovered next time), or already gone
        directory.rmdir()


__all__ = ["ABANDONED_AFTER", "BATCH", "Claimed", "Spool"]
