"""Durable file writes, shared by the spool, the file outbox and payout decisions."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


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
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
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
