"""Reading one member back from a ``gateway retention`` archive file, checked by its hash.

It sits with the store because the store reads archived bytes too: a message that arrives again
after retention archived its replies gets those replies again, from the archive."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

from gateway.errors import GatewayError

__all__ = ["ArchiveError", "read_member"]


class ArchiveError(GatewayError):
    """An archive file or member is missing, unreadable, or not the bytes it should be."""


def read_member(path: Path, member: str, sha256: str) -> bytes:
    """The bytes of ``member`` in ``path``, checked against their SHA-256."""
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            handle = archive.extractfile(member)
            if handle is None:
                raise ArchiveError(f"{path}: {member} is not a file")
            data = handle.read()
    except KeyError as exc:
        raise ArchiveError(f"{path}: no member {member}") from exc
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"{path}: cannot read {member}: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ArchiveError(f"{path}: {member} does not match its SHA-256 {sha256}")
    return data
