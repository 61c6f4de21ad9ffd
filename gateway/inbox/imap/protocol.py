"""The IMAP protocol as data: sequence sets, quoting, and the replies aioimaplib hands back.

Pure functions, no connection: ``session`` sends commands and parses their replies here, and
the unit tests check each parser on reply lines as aioimaplib gives them (``bytes`` lines, a
message literal as a ``bytearray``, the tagged completion last), without a server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

#: Most bytes fetched in one ``UID FETCH``; a bigger single mail is fetched alone.
MAX_BATCH_BYTES = 32 * 1024 * 1024

def uid_set(uids: Iterable[int]) -> str:
    """The compact IMAP sequence set of ``uids``: ``[1, 2, 3, 7]`` -> ``"1:3,7"``."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("empty UID set")
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = uid
    parts.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(parts)


def message_id_of(raw: bytes) -> str | None:
    """The ``Message-ID`` header of a raw mail (whitespace folded), or None."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[: end + 2]
    value = BytesHeaderParser(policy=compat32).parsebytes(head).get("Message-ID")
    if value is None:
        return None
    folded = " ".join(str(value).split())
    return folded[:998] or None


def quote(folder: str) -> str:
    """A folder name as an IMAP quoted string."""
    return '"' + folder + '"'  # folder names are validated: no quotes, backslashes or CR/LF


_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")


def parse_search(lines: Sequence[Any]) -> list[int]:
    """The UIDs of a ``UID SEARCH`` reply, sorted, each once."""
    uids: list[int] = []
    for line in lines[:-1]:  # the last line is the tagged completion text
        tokens = bytes(line).split()
        if tokens and all(t.isdigit() for t in tokens):
            uids.extend(int(t) for t in tokens)
    return sorted(set(uids))


def parse_sizes(lines: Sequence[Any]) -> dict[int, int]:
    """UID -> size from a ``UID FETCH (UID RFC822.SIZE)`` reply."""
    sizes: dict[int, int] = {}
    for line in lines:
        if type(line) is bytes and _FETCH_START.match(line):
            uid, size = _UID.search(line), _SIZE.search(line)
            if uid and size:
                sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def parse_bodies(lines: Sequence[Any]) -> dict[int, bytes]:
    """UID -> raw bytes from a ``UID FETCH (UID BODY.PEEK[])`` reply.

    aioimaplib gives ``b'3 FETCH (UID 7 BODY[] {1234}'``, the literal as a ``bytearray``, then
    ``b')'`` (a server may also put ``UID 7`` after the literal, in that closing line).
    """
    bodies: dict[int, bytes] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if (
            type(line) is bytes
            and _FETCH_START.match(line)
            and line.endswith(b"}")
            and i + 1 < len(lines)
            and isinstance(lines[i + 1], bytearray)
        ):
            match = _UID.search(line)
            if match is None and i + 2 < len(lines) and type(lines[i + 2]) is bytes:
                match = _UID.search(lines[i + 2])
            if match is not None:
                bodies[int(match.group(1))] = bytes(lines[i + 1])
            i += 2
            continue
        i += 1
    return bodies


def parse_uidvalidity(lines: Sequence[Any]) -> int | None:
    """The UIDVALIDITY a ``SELECT`` reply announces, or None."""
    for line in lines:
        match = _UIDVALIDITY.search(bytes(line))
        if match:
            return int(match.group(1))
    return None


def batches_by_bytes(uids: Sequence[int], sizes: Mapping[int, int]) -> Iterator[list[int]]:
    """``uids`` in order, cut into batches of at most ``MAX_BATCH_BYTES`` (a bigger mail alone);
    a UID without a size (expunged meanwhile) is left out."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid)
        if size is None:
            continue  # expunged meanwhile
        if batch and total + size > MAX_BATCH_BYTES:
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def response_text(response: Any) -> str:
    """The completion text of a reply (its last line), for errors and logs."""
    lines = getattr(response, "lines", None) or [b""]
    return bytes(lines[-1]).decode("utf-8", "replace")[:300]

