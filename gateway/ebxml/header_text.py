"""Sender-supplied text made safe for the headers of a reply mail.

Values we copy from a received message into our reply (its ebXML MessageId in the Subject, its
From PartyId in ``HER:<id>`` as the recipient) may hold line breaks, control characters or
non-ASCII letters. Any of those used to make building the reply fail, so a valid claim went
unanswered. Here they become header-safe instead: controls and line breaks turn into spaces
(a CR/LF can never start a header of its own), the text is cut to a sane length, and anything
non-ASCII is RFC 2047-encoded by ``encoded``.
"""

from __future__ import annotations

from email.header import Header
from typing import Final

#: Longest sender-supplied text kept in one header of ours.
MAX_HEADER_TEXT: Final = 200


def header_safe(text: str, *, limit: int = MAX_HEADER_TEXT) -> str:
    """``text`` on one line without control characters, at most ``limit`` characters."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    single = " ".join(cleaned.split())
    return single if len(single) <= limit else single[: limit - 1] + "…"


def encoded(name: str, text: str) -> bytes:
    """The header line ``name: text`` (without line end), ASCII or RFC 2047-encoded, folded
    with CRLF where long; ``text`` is made ``header_safe`` first."""
    safe = header_safe(text)
    if safe.isascii():
        return f"{name}: {safe}".encode("ascii")
    value = Header(safe, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {value}".encode("ascii")
