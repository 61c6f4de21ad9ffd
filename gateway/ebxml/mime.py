"""The MIME multipart/related package that carries an ebMS 2.0 message over SMTP.

``unwrap`` turns received bytes into a ``MimePackage`` (the SOAP envelope part plus the payload
parts), ``build`` does the reverse for what we send. Pure functions: bytes in, values out.

Parsing uses ``email.policy.compat32``: it is the policy that never re-folds or re-interprets
headers and keeps undecodable bytes as surrogates, so nothing in a hostile message can make the
header registry of ``policy.default`` raise. Building does not use ``email`` at all: the bytes are
assembled by hand so that the output is CRLF-terminated, never re-folded, and byte-identical for
the same input.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.utils
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.errors import (
    CloseBoundaryNotFoundDefect,
    MultipartInvariantViolationDefect,
    NoBoundaryInMultipartDefect,
    StartBoundaryNotFoundDefect,
)
from email.errors import MessageError as EmailError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from typing import Final
from urllib.parse import unquote

from gateway.ebxml.header_text import encoded, header_safe
from gateway.ebxml.mime_limits import check_bounds
from gateway.errors import MimeProblem

__all__ = ["MimePackage", "MimePart", "OutgoingPart", "build", "unwrap"]

#: Content types accepted for the SOAP envelope part (ebMS 2.0 prescribes text/xml).
_ENVELOPE_TYPES: Final = frozenset({"text/xml", "application/xml"})
_TRANSFER_ENCODINGS: Final = frozenset({"7bit", "8bit", "binary", "base64", "quoted-printable"})
#: Shown to the sender when the email package fails in a way we did not foresee.
_UNREADABLE: Final = "MIME-pakken kan ikke tolkes."
#: An ``=`` in quoted-printable must start ``=XX`` or a soft line break.
_BAD_QP_ESCAPE: Final = re.compile(rb"=(?![0-9A-Fa-f]{2}|[ \t]*(?:\r\n|\n|\r|$))")
#: Deleted from a base64 body before strict decoding (``bytes.translate``: a regex substitution
#: over a whole part cost more than the decoding).
_BASE64_WHITESPACE: Final = b" \t\r\n"
_FOLD: Final = re.compile(r"\r?\n(?=[ \t])|\r(?=[ \t])")
_BASE64_LINE: Final = 76
_CRLF: Final = b"\r\n"


@dataclass(frozen=True, slots=True)
class MimePart:
    """One MIME body part, transfer-decoded."""

    content_id: str | None
    """Without the angle brackets."""
    content_type: str
    """Lowercased ``type/subtype``, without parameters."""
    params: tuple[tuple[str, str], ...]
    """Content-Type parameters, names lowercased, in order."""
    body: bytes
    charset: str | None


@dataclass(frozen=True, slots=True)
class MimePackage:
    """A received ebXML MIME package: the SOAP envelope part and the other parts."""

    mail_headers: tuple[tuple[str, str], ...]
    """Top-level headers in order, unfolded and decoded to text."""
    message_id: str | None
    """The mail's Message-ID, without angle brackets."""
    envelope: MimePart
    attachments: tuple[MimePart, ...]

    def part(self, content_id: str) -> MimePart | None:
        """The part with this Content-ID; accepts a ``cid:`` URL or ``<id>`` form."""
        wanted = normalize_content_id(content_id)
        for candidate in (self.envelope, *self.attachments):
            if candidate.content_id is not None and candidate.content_id == wanted:
                return candidate
        return None


@dataclass(frozen=True, slots=True)
class OutgoingPart:
    """A payload part to send: ``content_type`` may carry parameters."""

    content_id: str
    content_type: str
    body: bytes


def normalize_content_id(value: str) -> str:
    """``cid:a%40b``, ``<a@b>`` and ``a@b`` all become ``a@b`` (RFC 2392 URLs are %-encoded)."""
    text = value.strip()
    if text[:4].lower() == "cid:":
        text = unquote(text[4:]).strip()
    return _strip_angles(text)


def _strip_angles(value: str) -> str:
    text = value.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    return text


# --- unwrap ----------------------------------------------------------------------------------


def unwrap(raw: bytes) -> MimePackage:
    """Parse a received message; raise ``MimeProblem`` for anything that is not a sound package.

    A multipart/related package is expected; a single-part text/xml message is accepted as an
    envelope without attachments (signals may be sent that way).
    """
    try:
        return _unwrap(raw)
    except MimeProblem:
        raise
    except Exception as exc:
        # The email package is not written for hostile input; whatever slipped past the explicit
        # checks is still the sender's broken MIME, not our crash.
        raise MimeProblem(_UNREADABLE) from exc


def _unwrap(raw: bytes) -> MimePackage:
    if not raw.strip():
        # Said as it is: "no MIME headers" would send the sender looking in the wrong place.
        raise MimeProblem(f"Meldingen er tom ({len(raw)} byte, ingen tegn).")
    check_bounds(raw)  # before the stdlib parser: its cost grows faster than the input
    message = BytesParser(policy=policy.compat32).parsebytes(bytes(raw))
    raw_headers = _raw_headers(message)
    if not raw_headers:
        raise MimeProblem("Meldingen har ingen MIME-hoder; det er ikke en MIME-melding.")
    mail_headers = tuple((name, _decode_words(value)) for name, value in raw_headers)
    message_id = _single(raw_headers, "Message-ID", "meldingen")
    content_type_header = _single(raw_headers, "Content-Type", "meldingen")
    if content_type_header is None:
        raise MimeProblem("Meldingen mangler Content-Type; det er ikke en MIME-melding.")
    content_type = message.get_content_type()

    if content_type == "multipart/related":
        envelope, attachments = _related_parts(message)
    elif content_type in _ENVELOPE_TYPES and not message.is_multipart():
        envelope, attachments = _leaf(message, "meldingen"), ()
    else:
        raise MimeProblem(
            f"Meldingen har Content-Type {_shown(content_type)}; forventet multipart/related "
            "med SOAP-konvolutten som text/xml."
        )

    mid = _strip_angles(message_id) if message_id is not None else ""
    return MimePackage(
        mail_headers=mail_headers,
        message_id=mid or None,
        envelope=envelope,
        attachments=attachments,
    )


def _related_parts(message: Message) -> tuple[MimePart, tuple[MimePart, ...]]:
    """Split a multipart/related message into its envelope part and the rest."""
    boundary = message.get_boundary()
    if not boundary:
        raise MimeProblem("multipart/related mangler boundary-parameteret.")
    defects = message.defects
    no_start = NoBoundaryInMultipartDefect | StartBoundaryNotFoundDefect
    if any(isinstance(d, no_start) for d in defects):
        raise MimeProblem(
            f"Fant ikke grensen --{_shown(boundary)} i meldingen; delene kan ikke skilles."
        )
    if any(isinstance(d, CloseBoundaryNotFoundDefect) for d in defects):
        raise MimeProblem(
            f"Avsluttende grense --{_shown(boundary)}-- mangler; meldingen er trolig avkortet."
        )
    payload = message.get_payload()
    if any(isinstance(d, MultipartInvariantViolationDefect) for d in defects) or not isinstance(
        payload, list
    ):
        raise MimeProblem("multipart/related-meldingen inneholder ingen lesbare deler.")
    if not payload:
        raise MimeProblem("multipart/related-meldingen inneholder ingen deler.")

    parts = [_leaf(sub, f"del {index}") for index, sub in enumerate(payload, start=1)]
    seen: set[str] = set()
    for part in parts:
        if part.content_id is None:
            continue
        if part.content_id in seen:
            raise MimeProblem(f"Content-ID <{_shown(part.content_id)}> brukes av flere deler.")
        seen.add(part.content_id)

    start_param = message.get_param("start")
    if start_param is not None:
        start = normalize_content_id(email.utils.collapse_rfc2231_value(start_param))
        envelope_index = next((i for i, p in enumerate(parts) if p.content_id == start), None)
        if envelope_index is None:
            raise MimeProblem(
                f"start-parameteret peker på <{_shown(start)}>, men ingen del har den "
                "Content-ID-en."
            )
        if parts[envelope_index].content_type not in _ENVELOPE_TYPES:
            raise MimeProblem(
                f"Startdelen <{_shown(start)}> har Content-Type "
                f"{_shown(parts[envelope_index].content_type)}; forventet text/xml."
            )
    else:
        envelope_index = next(
            (i for i, p in enumerate(parts) if p.content_type in _ENVELOPE_TYPES), None
        )
        if envelope_index is None:
            raise MimeProblem("Ingen del av typen text/xml; SOAP-konvolutten mangler.")
    envelope = parts[envelope_index]
    attachments = tuple(p for i, p in enumerate(parts) if i != envelope_index)
    return envelope, attachments


def _leaf(part: Message, label: str) -> MimePart:
    """Decode one non-multipart part; ``label`` names it in error texts."""
    if part.is_multipart():
        raise MimeProblem(f"{_capital(label)} er selv sammensatt; nøstede MIME-deler støttes ikke.")
    headers = _raw_headers(part)
    content_id_header = _single(headers, "Content-ID", label)
    _single(headers, "Content-Type", label)
    encoding = (_single(headers, "Content-Transfer-Encoding", label) or "7bit").strip().lower()
    if encoding not in _TRANSFER_ENCODINGS:
        raise MimeProblem(
            f"{_capital(label)} har ukjent Content-Transfer-Encoding {_shown(encoding)}."
        )

    content_type = part.get_content_type()
    params = _params(part)
    body = _decode_body(_raw_body(part), encoding, label)
    charset = next((value for name, value in params if name == "charset"), None)
    if charset is not None:
        charset = charset.strip().lower()
        if content_type.startswith("text/"):
            _check_charset(body, charset, label)

    content_id = normalize_content_id(content_id_header) if content_id_header else ""
    return MimePart(
        content_id=content_id or None,
        content_type=content_type,
        params=params,
        body=body,
        charset=charset or None,
    )


def _raw_body(part: Message) -> bytes:
    """The body bytes exactly as received, still transfer-encoded.

    ``get_payload()`` re-decodes 8-bit text lossily and ``get_payload(decode=True)`` decodes
    base64 leniently; without the Content-Transfer-Encoding header the latter returns the raw
    bytes. The message is our own parse result, so removing the header harms nobody.
    """
    del part["Content-Transfer-Encoding"]
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    if payload is None:
        return b""
    raise MimeProblem("En MIME-del kan ikke leses.")


def _decode_body(data: bytes, encoding: str, label: str) -> bytes:
    """Undo the transfer encoding, strictly: a damaged body is a MimeProblem, not garbage."""
    if encoding == "base64":
        try:
            return base64.b64decode(data.translate(None, _BASE64_WHITESPACE), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MimeProblem(f"{_capital(label)} er ikke gyldig base64.") from exc
    if encoding == "quoted-printable":
        if _BAD_QP_ESCAPE.search(data) or not data.isascii():
            raise MimeProblem(f"{_capital(label)} er ikke gyldig quoted-printable.")
        return binascii.a2b_qp(data)
    return data


def _check_charset(body: bytes, charset: str, label: str) -> None:
    """A text part must name a known charset, and its body must decode with it."""
    try:
        if len(charset) > 64:
            raise LookupError(charset)
        codecs.lookup(charset)
    except (LookupError, ValueError) as exc:
        raise MimeProblem(f"{_capital(label)} har ukjent tegnsett {_shown(charset)}.") from exc
    try:
        body.decode(charset)
    except LookupError as exc:  # a bytes-to-bytes codec such as "base64" is not a charset
        raise MimeProblem(f"{_capital(label)} har ugyldig tegnsett {_shown(charset)}.") from exc
    except (UnicodeError, ValueError) as exc:
        raise MimeProblem(
            f"{_capital(label)} kan ikke dekodes med tegnsettet {_shown(charset)}."
        ) from exc


def _params(part: Message) -> tuple[tuple[str, str], ...]:
    """Content-Type parameters with RFC 2231 values collapsed to text."""
    raw = part.get_params() or []
    result: list[tuple[str, str]] = []
    for name, value in raw[1:]:  # the first entry is the type/subtype itself
        text = email.utils.collapse_rfc2231_value(value)
        result.append((name.strip().lower(), _desurrogate(text)))
    return tuple(result)


def _raw_headers(message: Message) -> list[tuple[str, str]]:
    """Headers as text: unfolded, with undecodable bytes replaced."""
    return [
        (_desurrogate(name), _desurrogate(_FOLD.sub("", value)).strip())
        for name, value in message.raw_items()
    ]


def _single(headers: list[tuple[str, str]], name: str, label: str) -> str | None:
    """The value of a header that may occur at most once."""
    values = [value for key, value in headers if key.lower() == name.lower()]
    if len(values) > 1:
        raise MimeProblem(f"{_capital(label)} har flere {name}-hoder.")
    return values[0] if values else None


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; keep the raw text where they are broken."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (EmailError, LookupError, ValueError, TypeError):
        return value


def _desurrogate(text: str) -> str:
    """Replace the surrogates BytesParser uses for non-ASCII bytes: UTF-8 if it is, else U+FFFD."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that did not come from a byte
        data = text.encode("utf-8", "replace")
    return data.decode("utf-8", "replace")


def _shown(value: str, limit: int = 80) -> str:
    """A sender-supplied value made safe to quote in an error text."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _capital(label: str) -> str:
    return label[:1].upper() + label[1:]


# --- build -----------------------------------------------------------------------------------


def build(
    envelope_xml: bytes,
    attachments: Sequence[OutgoingPart],
    *,
    mail_from: str,
    mail_to: str,
    subject: str,
    message_id: str,
    date: datetime,
) -> bytes:
    """Assemble an SMTP-ready multipart/related ebXML message (CRLF, base64 parts).

    Deterministic: the boundary and the envelope's Content-ID are derived from ``message_id``,
    so building the same reply twice gives the same bytes. Raises ``ValueError`` for values that
    cannot be put in a header, for a naive ``date`` and for duplicate Content-IDs; ``subject``
    and ``mail_to`` (which may carry a sender's values) are made header-safe instead.
    """
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("date must be timezone-aware")
    try:
        envelope_xml.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("the envelope must be UTF-8 encoded XML") from exc
    mid = _strip_angles(message_id)
    _check_token(mid, "message_id")
    digest = hashlib.sha256(mid.encode("ascii")).hexdigest()
    # "=_" cannot occur in base64 output, so this boundary never collides with a body.
    boundary = f"----=_Part_{digest[:32]}"
    domain = mid.rpartition("@")[2] if "@" in mid else "gateway.invalid"
    envelope_cid = f"ebxml-envelope.{digest[:24]}@{domain}"

    seen = {envelope_cid}
    for part in attachments:
        _check_token(part.content_id, "content_id")
        _check_header_text(part.content_type, "content_type")
        if part.content_id in seen:
            raise ValueError(f"duplicate Content-ID {part.content_id!r}")
        seen.add(part.content_id)
    _check_header_text(mail_from, "mail_from")
    if not header_safe(mail_to):
        raise ValueError("mail_to must not be empty")

    lines: list[bytes] = [
        _header_line("From", mail_from),
        # Both may hold what a sender wrote (a PartyId, a MessageId): made header-safe, never
        # a reason to leave a message unanswered.
        encoded("To", mail_to),
        encoded("Subject", subject),
        _header_line("Date", email.utils.format_datetime(date)),
        _header_line("Message-ID", f"<{mid}>"),
        b"MIME-Version: 1.0",
        _header_line("Content-Type", "multipart/related;"),
        _header_line("", f' boundary="{boundary}";'),
        _header_line("", ' type="text/xml";'),
        _header_line("", f' start="<{envelope_cid}>"'),
        b'SOAPAction: "ebXML"',
        b"",
    ]
    parts = [OutgoingPart(envelope_cid, "text/xml; charset=UTF-8", envelope_xml), *attachments]
    for part in parts:
        lines += [
            f"--{boundary}".encode("ascii"),
            _header_line("Content-Type", part.content_type),
            b"Content-Transfer-Encoding: base64",
            _header_line("Content-ID", f"<{part.content_id}>"),
            b"",
            *_base64_lines(part.body),
        ]
    lines.append(f"--{boundary}--".encode("ascii"))
    return _CRLF.join(lines) + _CRLF


def _base64_lines(body: bytes) -> list[bytes]:
    encoded = base64.b64encode(body)
    if not encoded:
        return [b""]
    return [encoded[i : i + _BASE64_LINE] for i in range(0, len(encoded), _BASE64_LINE)]


def _header_line(name: str, value: str) -> bytes:
    """``Name: value``, or a continuation line when ``name`` is empty."""
    return (f"{name}: {value}" if name else value).encode("ascii")


def _check_header_text(value: str, what: str) -> None:
    _check_no_newline(value, what)
    if not value.isascii() or not value.strip():
        raise ValueError(f"{what} must be non-empty ASCII: {value!r}")


def _check_token(value: str, what: str) -> None:
    _check_header_text(value, what)
    if any(ch in value for ch in '<> \t"') or not value.isprintable():
        raise ValueError(f"{what} must not contain spaces, quotes or angle brackets: {value!r}")


def _check_no_newline(value: str, what: str) -> None:
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError(f"{what} must not contain line breaks: {value!r}")
