"""Durable file writes, shared by the spool, the file outbox and payout decisions.

Every file appears whole or not at all, also across a power cut: it is written to a hidden temp
file, its data made durable, and only then renamed into place (and the directory fsynced, so the
rename is durable too). ``write_all_atomically`` does that for many files at once with a number
of syncs that does not grow with their number: on Linux one ``syncfs`` makes all their data
durable (an fsync per file costs about as much CPU each as the whole call, and a journal commit
each); elsewhere each file is fsynced.
"""

from __future__ import annotations

import ctypes
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Staged",
    "discard",
    "fsync_dir",
    "publish",
    "stage",
    "staged_target",
    "write_all_atomically",
    "write_atomically",
]


def fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, *, sync_dir: bool = False) -> None:
    """Write ``data`` to a hidden temp file, fsync it, rename it over ``path``: readers see the
    old file or the whole new one, never part of it. Temp files are named ``.<name>.<id>.tmp``
    (the spool and outbox ignore and clean up such names)."""
    tmp = _temp_for(path)
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not be left fuller by our leftovers
        raise
    if sync_dir:
        fsync_dir(path.parent)


def write_all_atomically(files: Sequence[tuple[Path, bytes]]) -> None:
    """Write each ``(path, data)`` as ``write_atomically`` does, all at once: every temp file is
    written, their data made durable together, then each renamed into place, then each
    directory fsynced once. A file is never visible before its data is durable. On an error
    the temp files not yet renamed are removed and the error is raised (files renamed before
    it stay: they are whole)."""
    staged = stage(files)
    try:
        publish(staged)
    except BaseException:
        discard(staged)  # those renamed already are gone from their temp names
        raise


@dataclass(frozen=True, slots=True)
class Staged:
    """Files written under temp names with their data durable, not yet in place: each temp
    file is ``.<name>.<8 hex>.tmp`` beside its ``path``."""

    files: tuple[tuple[Path, Path], ...]  # (temp file, path)


def stage(files: Sequence[tuple[Path, bytes]]) -> Staged:
    """The first half of ``write_all_atomically``: each file written under its temp name,
    all their data made durable at once. Nothing is visible under the final names yet; an
    error removes what was written and is raised."""
    temps: list[tuple[Path, Path]] = []
    try:
        fds: list[int] = []
        try:
            for path, data in files:
                tmp = _temp_for(path)
                fds.append(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
                temps.append((tmp, path))
                _write_all(fds[-1], data)
            _sync_data(fds)
        finally:
            for fd in fds:
                os.close(fd)
    except BaseException:
        discard(Staged(tuple(temps)))
        raise
    return Staged(tuple(temps))


def publish(staged: Staged) -> None:
    """The second half: rename each staged file into place, then fsync each directory once.
    On an error the temp files not yet renamed stay (the caller may try again, or discard)."""
    for tmp, path in staged.files:
        try:
            tmp.replace(path)
        except FileNotFoundError:
            if not path.exists():
                raise
            # Renamed by an earlier try that failed later on.
    for directory in dict.fromkeys(path.parent for _, path in staged.files):
        fsync_dir(directory)


def discard(staged: Staged) -> None:
    """Remove staged temp files (what was staged for something that did not happen)."""
    for tmp, _ in staged.files:
        tmp.unlink(missing_ok=True)


def staged_target(temp: Path) -> Path | None:
    """The file a temp file ``.<name>.<8 hex>.tmp`` was staged for, or None for another name."""
    name = temp.name
    if not (name.startswith(".") and name.endswith(".tmp")):
        return None
    stem, _, suffix = name[1:-4].rpartition(".")
    if not stem or len(suffix) != 8:
        return None
    return temp.with_name(stem)


def _temp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_data(fds: Sequence[int]) -> None:
    """Make the data of the open files ``fds`` durable: one ``syncfs`` per file system where
    Linux has it, else an fsync per file."""
    if not fds:
        return
    syncfs = _syncfs()
    if syncfs is None:
        for fd in fds:
            os.fsync(fd)
        return
    devices: dict[int, int] = {}
    for fd in fds:
        devices.setdefault(os.fstat(fd).st_dev, fd)
    for fd in devices.values():
        if syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs: {os.strerror(error)}")


_SYNCFS: list[ctypes._FuncPointer | None] = []


def _syncfs() -> ctypes._FuncPointer | None:
    """The C library's ``syncfs`` (Linux, glibc 2.14+), or None where there is none."""
    if not _SYNCFS:
        try:
            _SYNCFS.append(getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None))
        except OSError:  # pragma: no cover - no C library to load
            _SYNCFS.append(None)
    return _SYNCFS[0]
