"""Bounds on a MIME message, checked on the raw bytes BEFORE the stdlib parser sees them.

The ``email`` package is not written for hostile input: decoding 100,000 RFC 2047 encoded words
in one Subject takes it over a minute, and deep or numerous parts cost it in proportion. So the
header blocks (the message's and each part's) are measured first, with plain byte searches, and
a message beyond any bound is refused with ``MimeProblem`` in linear time:

- each header block at most ``MAX_HEADER_BYTES`` and ``MAX_HEADER_FIELDS`` fields, with at most
  ``MAX_ENCODED_WORDS`` encoded words (``=?charset?enc?text?=``);
- at most ``MAX_PARTS`` body parts, none of them multipart itself (an ebXML package is flat).
"""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesHeaderParser
from typing import Final

from gateway.errors import MimeProblem

MAX_HEADER_BYTES: Final = 64 * 1024
MAX_HEADER_FIELDS: Final = 200
MAX_ENCODED_WORDS: Final = 100
MAX_PARTS: Final = 64

_BLANK_LINE: Final = re.compile(rb"\r?\n\r?\n|\r\r")
_FIELD_START: Final = re.compile(rb"(?:^|\n)[^ \t\r\n]")
_MULTIPART: Final = re.compile(rb"(?im)^content-type:[ \t]*(?:\r?\n[ \t]+)?multipart/")


def check_bounds(raw: bytes) -> None:
    """Raise ``MimeProblem`` if ``raw`` exceeds a bound (see the module); else return."""
    headers, body = _split(raw, "meldingen")
    message = BytesHeaderParser(policy=policy.compat32).parsebytes(headers)
    if message.get_content_maintype() != "multipart":
        return
    boundary = message.get_boundary()
    if not boundary:
        return  # the parser reports it
    starts = _delimiter_ends(body, b"--" + boundary.encode("utf-8", "surrogateescape"))
    if len(starts) > MAX_PARTS + 1:  # the closing delimiter ends the last part
        raise MimeProblem(f"Meldingen har mer enn {MAX_PARTS} MIME-deler.")
    for index, (start, end) in enumerate(zip(starts, [*starts[1:], len(body)], strict=False)):
        part = body[start:end]
        if part.startswith(b"--"):
            break  # the closing delimiter
        part_headers, _ = _split(part.lstrip(b" \t").removeprefix(b"\r").removeprefix(b"\n"),
                                 f"del {index + 1}")
        if _MULTIPART.search(part_headers):
            raise MimeProblem(
                f"Del {index + 1} er selv sammensatt; nøstede MIME-deler støttes ikke."
            )


def _delimiter_ends(body: bytes, marker: bytes) -> list[int]:
    """Where each ``marker`` at the start of a line of ``body`` ends, as ``re``'s
    ``(?m)^marker`` would find them; a byte search (a pattern per boundary, compiled for every
    message, cost more than the search itself)."""
    ends: list[int] = []
    at = body.find(marker)
    while at != -1:
        if at == 0 or body[at - 1] == 0x0A:  # at a line start
            ends.append(at + len(marker))
            at = body.find(marker, at + len(marker))
        else:
            at = body.find(marker, at + 1)
    return ends


def _split(data: bytes, label: str) -> tuple[bytes, bytes]:
    """The header block of ``data`` (checked against the bounds) and what follows it."""
    blank = _BLANK_LINE.search(data, 0, MAX_HEADER_BYTES + 4)
    if blank is None:
        if len(data) > MAX_HEADER_BYTES:
            raise _too_large(label)
        headers, body = data, b""
    else:
        headers, body = data[: blank.start()], data[blank.end() :]
    if len(headers) > MAX_HEADER_BYTES:
        raise _too_large(label)
    fields = len(_FIELD_START.findall(headers))
    if fields > MAX_HEADER_FIELDS:
        raise MimeProblem(
            f"{_capital(label)} har {fields} MIME-hoder; høyeste tillatte er {MAX_HEADER_FIELDS}."
        )
    words = headers.count(b"=?")
    if words > MAX_ENCODED_WORDS:
        raise MimeProblem(
            f"{_capital(label)} har {words} kodede ord i hodene; høyeste tillatte er "
            f"{MAX_ENCODED_WORDS}."
        )
    return headers, body


def _too_large(label: str) -> MimeProblem:
    return MimeProblem(
        f"MIME-hodene i {label} er større enn {MAX_HEADER_BYTES} byte; trolig ikke en MIME-melding."
    )


def _capital(label: str) -> str:
    return label[:1].upper() + label[1:]
