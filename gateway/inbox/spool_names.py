"""Names of spool files: what a claimed file is called, and how a sender's name is shown.

A sender may drop any name the file system allows: up to 255 bytes, bytes that are not UTF-8
(Python hands them on as surrogates), control characters. The spool adds a unique prefix when it
claims a file, and that name becomes the intake's ``source_ref`` in the database and appears in
logs. So the claimed name is built to be safe: valid UTF-8, printable, and short enough for the
file system (``NAME_MAX``) with the prefix added.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Final

#: The file system's limit on one name, in bytes (ext4, xfs, tmpfs, btrfs: 255).
NAME_MAX: Final = 255
#: Between the unique prefix and the sender's (cleaned) name in a claimed file's name.
SEPARATOR: Final = "--"
#: Room kept for the suffixes the spool puts beside a file (``.recoveries``, ``.reason``).
_SIDECAR_ROOM: Final = len(".recoveries")
#: What a name that cleans to nothing is called.
_EMPTY: Final = "unnamed"


def shown_name(name: str) -> str:
    """``name`` as text that is safe to store and log: bytes that are not UTF-8 become
    ``\\xNN``, control characters and separators ``\\uNNNN``-style escapes; nothing is lost
    silently and the result is always valid, printable UTF-8."""
    raw = os.fsencode(name)  # surrogates from undecodable bytes become those bytes again
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text) or _EMPTY


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def claimed_name(original: str, *, now: datetime | None = None) -> str:
    """A unique, safe name for a file claimed from ``incoming/`` as ``original``.

    ``<UTC stamp>-<8 hex>--<shown original>``, cut (at a character boundary) so that the name
    and its sidecar suffixes fit ``NAME_MAX`` bytes. The stamp is when it was claimed.
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
    prefix = f"{stamp}-{uuid.uuid4().hex[:8]}{SEPARATOR}"
    budget = NAME_MAX - _SIDECAR_ROOM - len(prefix.encode("ascii"))
    return prefix + _cut(shown_name(original), budget)


def original_of(claimed: str) -> str:
    """The sender's (shown) name inside a claimed name; the name itself if it has no prefix."""
    return claimed.split(SEPARATOR, 1)[-1]


def _cut(text: str, budget: int) -> str:
    """``text`` cut to at most ``budget`` UTF-8 bytes, never inside a character."""
    data = text.encode("utf-8")
    if len(data) <= budget:
        return text
    return data[:budget].decode("utf-8", "ignore")


def unique_in(directory_names: set[str] | None, name: str) -> str:
    """``name``, or a new unique variant of it when it is taken (``release``, ``requeue``)."""
    if directory_names is None or name not in directory_names:
        return name
    return _cut(f"{uuid.uuid4().hex[:8]}-{name}", NAME_MAX - _SIDECAR_ROOM)
