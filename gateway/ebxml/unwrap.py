"""What a received file is: a MIME ebXML package, or an XML document dropped as it is.

Pure: bytes in, a value out. Shared by the pipeline and ``gateway validate``, so both refuse the
same oversized input.
"""

from __future__ import annotations

import codecs
import email.utils
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from gateway.ebxml import mime
from gateway.ebxml.model import EbxmlMessage
from gateway.errors import MimeProblem, NotXml

__all__ = [
    "SIGNAL_ACTIONS",
    "BareDocument",
    "Packaged",
    "Truncated",
    "Unwrapped",
    "is_signal",
    "unwrap",
    "whole_sha256",
    "whole_size",
]

#: ebMS actions of the MSH signals we may receive for our own messages.
SIGNAL_ACTIONS: Final = frozenset({"Acknowledgment", "MessageError", "StatusResponse", "Pong"})
_MAIL_ADDRESS: Final = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


@dataclass(frozen=True, slots=True)
class BareDocument:
    """An XML document without ebXML around it (a MsgHead dropped in the spool)."""

    payload: bytes
    content_sha256: str


@dataclass(frozen=True, slots=True)
class Packaged:
    """A MIME ebXML package, not yet read beyond its MIME structure."""

    package: mime.MimePackage
    mail_from: str | None
    """The sender's mail address if the From header holds a clean one."""
    content_sha256: str
    """Over the envelope and every attachment: the same ebXML message sent again has the same."""


Unwrapped = BareDocument | Packaged


class Truncated(bytes):
    """The first bytes of a message too large to read whole, kept as evidence.

    An inbox that refuses a message by its size hands on only a bounded prefix, as this bytes
    value, with the size and SHA-256 of the whole message it read past. ``unwrap`` refuses it
    by ``size``; the store keeps the prefix with the whole's size and digest.
    """

    size: int
    sha256: str

    def __new__(cls, prefix: bytes, *, size: int, sha256: str) -> Truncated:
        value = super().__new__(cls, prefix)
        value.size = size
        value.sha256 = sha256
        return value

    def __reduce__(self) -> tuple[object, ...]:  # pickled to a worker process as it is
        return (_truncated, (bytes(self), self.size, self.sha256))


def _truncated(prefix: bytes, size: int, sha256: str) -> Truncated:
    return Truncated(prefix, size=size, sha256=sha256)


def whole_size(raw: bytes) -> int:
    """The size of the message ``raw`` is (or is the evidence prefix of)."""
    return raw.size if isinstance(raw, Truncated) else len(raw)


def whole_sha256(raw: bytes) -> str:
    """The SHA-256 of the message ``raw`` is (or is the evidence prefix of)."""
    return raw.sha256 if isinstance(raw, Truncated) else hashlib.sha256(raw).hexdigest()


def unwrap(raw: bytes, *, max_bytes: int) -> Unwrapped:
    """``raw`` as a bare XML document or a MIME package.

    Larger than ``max_bytes`` (or ``Truncated``): ``NotXml`` (T01) when it starts like an XML
    document, else ``MimeProblem``. Not a readable package: ``MimeProblem``."""
    size = whole_size(raw)
    if size > max_bytes or isinstance(raw, Truncated):
        if looks_like_xml(raw):
            raise NotXml(
                f"Dokumentet er for stort ({size} byte; høyeste tillatte er {max_bytes} byte)."
            )
        raise MimeProblem(f"Meldingen er {size} byte; største tillatte er {max_bytes} byte.")
    if looks_like_xml(raw):
        return BareDocument(payload=raw, content_sha256=hashlib.sha256(raw).hexdigest())
    package = mime.unwrap(raw)
    digest = hashlib.sha256(package.envelope.body)
    for part in package.attachments:
        digest.update(part.body)
    return Packaged(
        package=package,
        mail_from=_clean_address(_header(package, "From")),
        content_sha256=digest.hexdigest(),
    )


def looks_like_xml(raw: bytes) -> bool:
    """Starts like an XML document: ``<`` after whitespace, in UTF-8, UTF-16 or UTF-32, with
    or without a byte order mark (the encodings XML 1.0 Appendix F detects). The one rule for
    every bare document; the hardened parser then decodes it by its BOM or declaration."""
    head = raw[:256]
    text = head.decode(_xml_encoding(head), errors="ignore")  # utf-8-sig drops a UTF-8 BOM
    return text.lstrip("\ufeff \t\r\n").startswith("<")


def _xml_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for probe, encoding in _BOMLESS:
        if head.startswith(probe):
            return encoding
    return "latin-1"  # UTF-8 and ASCII-compatible encodings: markup is ASCII either way


#: BOM-less UTF-32/UTF-16 (a ``<`` or a space first), longest probes first.
_BOMLESS: Final = (
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00", "utf-16-le"),
    (b"\x00<", "utf-16-be"),
    (b" \x00", "utf-16-le"),
    (b"\x00 ", "utf-16-be"),
)


def is_signal(message: EbxmlMessage) -> bool:
    """An MSH signal (acknowledgment, error, status) rather than a message to process."""
    return message.header.action in SIGNAL_ACTIONS


def _header(package: mime.MimePackage, name: str) -> str | None:
    for key, value in package.mail_headers:
        if key.lower() == name.lower():
            return value
    return None


def _clean_address(from_header: str | None) -> str | None:
    """The address of a From header, if it is a clean one; else None (the reply is then
    addressed by ebXML party). A mangled header must not break the reply."""
    if not from_header:
        return None
    _, address = email.utils.parseaddr(from_header)
    return address if _MAIL_ADDRESS.fullmatch(address) else None
