"""Named locks between processes on one machine: ``flock`` on files beside the SQLite database.

The SQLite engine's ``try_lock``/``held``/``unlock``: a lock is an exclusive ``flock`` on
``<directory>/<name>.lock``, so the kernel releases it the moment its process dies, however it
dies (SIGKILL included), and a restarted daemon takes its mailboxes and its outbox rows back at
once. ``flock`` locks belong to an open file, so two engines in one process exclude each other
too.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import threading
from pathlib import Path

__all__ = ["FileLocks"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class FileLocks:
    """The locks this engine holds, as open files in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._held: dict[str, int] = {}  # name -> file descriptor
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
        return self.directory / f"{_UNSAFE.sub('_', name)[:60]}.{digest}.lock"

    def try_lock(self, name: str) -> bool:
        """Take ``name`` if no open file holds it; True if it is held here now."""
        with self._lock:
            if name in self._held:
                return True
            fd = os.open(self._path(name), os.O_RDWR | os.O_CREAT, 0o600)
            if not _flock(fd):
                os.close(fd)
                return False
            self._held[name] = fd
            return True

    def holds(self, name: str) -> bool:
        """Whether ``name`` is held here (a process's lock cannot be lost while it lives)."""
        with self._lock:
            return name in self._held

    def held(self, name: str, *, remove_stale: bool = False) -> bool:
        """Whether anyone holds ``name``. With ``remove_stale`` a free lock's file is removed
        (for names only ever taken by one holder, such as an instance's own lock)."""
        with self._lock:
            if name in self._held:
                return True
            path = self._path(name)
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                return False
            try:
                if not _flock(fd):
                    return True
                if remove_stale:
                    path.unlink(missing_ok=True)
                return False
            finally:
                os.close(fd)  # also releases the flock just taken

    def unlock(self, name: str, *, remove: bool = False) -> None:
        """Release ``name`` (``remove``: and delete its file, for single-holder names)."""
        with self._lock:
            fd = self._held.pop(name, None)
            if fd is None:
                return
            if remove:
                self._path(name).unlink(missing_ok=True)
            os.close(fd)

    def close(self) -> None:
        """Release every lock held here."""
        for name in list(self._held):
            self.unlock(name)


def _flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True
