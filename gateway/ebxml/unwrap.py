"""What a received file is: a MIME ebXML package, or an XML document dropped as it is.

Pure: bytes in, a value out. Shared by the pipeline and ``gateway validate``, so both refuse the
same oversized input.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from gateway.ebxml import mime
from gateway.ebxml.model import EbxmlMessage
from gateway.errors import MimeProblem

__all__ = ["SIGNAL_ACTIONS", "BareDocument", "Packaged", "Unwrapped", "is_signal", "unwrap"]

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


def unwrap(raw: bytes, *, max_bytes: int) -> Unwrapped:
    """``raw`` as a bare XML document or a MIME package; ``MimeProblem`` if it is larger than
    ``max_bytes`` or not a readable package."""
    if len(raw) > max_bytes:
        raise MimeProblem(f"Meldingen er {len(raw)} byte; største tillatte er {max_bytes} byte.")
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
    """Starts like an XML document (after a byte order mark and whitespace)."""
    return raw[:64].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


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
