"""Reading a received file with its size bounded before a byte is read.

A file larger than the largest message we accept is refused by its size alone: only its first
``EVIDENCE_BYTES`` are kept (what the sender sent, for a person to look at), its SHA-256 is
computed in bounded chunks, and it is handed on as ``Truncated``, which the pipeline refuses
with T01 (an XML document) or MimeProblem (a MIME package). Memory stays bounded whatever the
size. Shared by the spool and ``gateway validate``, so both apply the same limit.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO, Final

from gateway.ebxml.unwrap import Truncated

#: How much of an oversized file is kept as evidence.
EVIDENCE_BYTES: Final = 64 * 1024
_CHUNK: Final = 1024 * 1024


def is_oversized(path: Path, max_bytes: int) -> bool:
    """True if the file at ``path`` is larger than ``max_bytes`` (one ``stat``)."""
    return path.stat().st_size > max_bytes


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """The file's bytes; a ``Truncated`` prefix if it is larger than ``max_bytes``.

    The size is taken from the open file, and at most ``max_bytes + 1`` bytes are read into
    memory, so a file that grows while it is read is still refused rather than read whole.
    """
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size <= max_bytes:
            data = fh.read(max_bytes + 1)
            if len(data) <= max_bytes:
                return data
            fh.seek(0)
        return _evidence(fh)


def _evidence(fh: BinaryIO) -> Truncated:
    digest = hashlib.sha256()
    prefix = fh.read(EVIDENCE_BYTES)
    digest.update(prefix)
    size = len(prefix)
    while chunk := fh.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return Truncated(prefix, size=size, sha256=digest.hexdigest())
