"""Who may use a spool directory: one daemon, or several that said so.

A daemon holds ``<spool>/.lock`` with ``flock`` for as long as it runs: exclusively, or shared
when ``spool.shared = true`` (several instances, e.g. on one PostgreSQL database, taking files
from one spool; claiming by rename is atomic, so each file still goes to exactly one). A second
daemon that did not say ``shared`` (or a shared one beside a daemon that did not) is refused at
start with a ``ConfigurationError`` naming the directory and the holder: exit code 78.

In a shared spool each instance keeps the files it has claimed in a ``work/`` subdirectory of
its own, held with its own lock file; an instance that finds such a directory unlocked knows
its owner is gone and recovers the files in it (``Spool.recover``).

The kernel drops a ``flock`` when its holder dies, however it dies, so a lock never outlives a
crashed daemon.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from gateway.errors import ConfigurationError

LOCK_NAME = ".lock"


class DirectoryLock:
    """An ``flock`` on a file, held until ``release``."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def try_take(cls, path: Path, *, shared: bool = False) -> DirectoryLock | None:
        """The lock, or None if another process holds it in a conflicting way."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd)

    def write_owner(self) -> None:
        """Note our pid in the file, for the message a refused daemon prints."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # a note only: a full disk must not stop us
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def lock_spool(directory: Path, *, shared: bool) -> DirectoryLock:
    """Take the spool's lock for this daemon, or raise ``ConfigurationError`` (exit 78)."""
    path = directory / LOCK_NAME
    lock = DirectoryLock.try_take(path, shared=shared)
    if lock is None:
        holder = _owner(path)
        by = f" (pid {holder})" if holder else ""
        if shared:
            hint = "a daemon without spool.shared = true is using it"
        else:
            hint = "set spool.shared = true in every instance's config to share one spool"
        raise ConfigurationError(
            f"spool {directory} is in use by another gateway daemon{by}; {hint}"
        )
    if not shared:
        lock.write_owner()
    return lock


def _owner(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
