"""Hardened XML parsing for everything a sender can put in front of us.

No DTDs, no entities, no network, no huge trees: every way a hostile document can fail becomes
``gateway.errors.NotXml`` with a Norwegian ``detail``.
"""

from __future__ import annotations

import codecs
import re
import threading

from lxml import etree

from gateway.errors import NotXml
from gateway.logs import redact

#: Largest XML document accepted (10 MiB); a claim message is typically 10-50 KB.
DEFAULT_MAX_XML_BYTES = 10 * 1024 * 1024

#: Most elements in one document. A claim of 1,000 bills has about 30,000.
MAX_ELEMENTS = 200_000
#: The width budget: the sum over all elements of (number of children)². Locating schema errors
#: costs libxml2 time in proportion to it (each error's path counts its siblings), so a document
#: of 200,000 invalid siblings would take many minutes; 25,000,000 is 5,000 children under one
#: element, and keeps the worst case well under a second. A claim of 1,000 bills uses ~1.5 M.
MAX_WIDTH_BUDGET = 25_000_000
#: Below this many elements the width budget cannot be exceeded: no need to measure it.
_NARROW = 5_000

# Longest libxml2 message quoted back to the sender.
_MAX_MESSAGE_CHARS = 200

# lxml appends the position to the message; the detail names it already.
_POSITION_SUFFIX = re.compile(r",? line \d+, column \d+$")

_local = threading.local()


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


def _parser() -> etree.XMLParser:
    # lxml parsers keep per-parse state and are not thread-safe: one per thread.
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _new_parser()
        _local.parser = parser
    return parser


#: Masks every run of exactly eleven digits (a possible fødselsnummer): never echo one.
redact_identity_numbers = redact

def _prolog_text(data: bytes) -> str:
    """The document decoded just far enough to inspect its prolog (ASCII markup only)."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return data.decode("utf-32", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    if data.startswith(b"<\x00\x00\x00"):
        return data.decode("utf-32-le", errors="replace")
    if data.startswith(b"\x00\x00\x00<"):
        return data.decode("utf-32-be", errors="replace")
    if data.startswith(b"<\x00"):
        return data.decode("utf-16-le", errors="replace")
    if data.startswith(b"\x00<"):
        return data.decode("utf-16-be", errors="replace")
    # Markup characters are ASCII in every ASCII-compatible encoding; latin-1 never fails.
    return data.decode("latin-1")


def _prolog_declares_dtd(data: bytes) -> bool:
    """True if ``<!DOCTYPE`` or ``<!ENTITY`` (or any other ``<!`` declaration) precedes the root."""
    text = _prolog_text(data)
    pos = 0
    end = len(text)
    while pos < end:
        char = text[pos]
        if char in " \t\r\n\ufeff":
            pos += 1
            continue
        if text.startswith("<?", pos):
            close = text.find("?>", pos + 2)
            if close < 0:
                return False  # unterminated: the parser reports it
            pos = close + 2
            continue
        if text.startswith("<!--", pos):
            close = text.find("-->", pos + 4)
            if close < 0:
                return False
            pos = close + 3
            continue
        # A root element, text (malformed; the parser reports it), or a declaration.
        return text.startswith("<!", pos)
    return False


def _syntax_detail(error: etree.XMLSyntaxError) -> str:
    line, column = error.position
    message = _POSITION_SUFFIX.sub("", str(error.msg or error).strip())
    message = redact_identity_numbers(message)[:_MAX_MESSAGE_CHARS]
    return f"Dokumentet er ikke velformet XML (linje {line}, kolonne {column}): {message}"


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES) -> etree._Element:
    """Parse ``data`` into its root element, refusing anything unsafe or malformed.

    Raises ``NotXml`` for empty or oversized input, any DTD or entity declaration, entity
    references, wrong or unsupported encodings and malformed XML.
    """
    if not data or not data.strip():
        raise NotXml("Dokumentet er tomt.")
    if len(data) > max_bytes:
        raise NotXml(
            f"Dokumentet er for stort ({len(data)} byte; høyeste tillatte er {max_bytes} byte)."
        )
    if _prolog_declares_dtd(data):
        raise NotXml(
            "Dokumentet inneholder en DTD (<!DOCTYPE> eller <!ENTITY>), som ikke er tillatt."
        )
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as error:
        raise NotXml(_syntax_detail(error)) from None
    except (ValueError, LookupError, MemoryError, etree.LxmlError) as error:
        # Unknown encodings and internal parser limits end up here.
        raise NotXml(f"Dokumentet kan ikke leses som XML ({type(error).__name__}).") from None
    if root is None:  # pragma: no cover - only in recover mode, which is off
        raise NotXml("Dokumentet er tomt.")
    docinfo = root.getroottree().docinfo
    if getattr(docinfo, "doctype", "") or docinfo.internalDTD is not None:
        raise NotXml("Dokumentet inneholder en DTD (<!DOCTYPE>), som ikke er tillatt.")
    for _ in root.iter(etree.Entity):
        raise NotXml("Dokumentet inneholder entitetsreferanser, som ikke er tillatt.")
    _check_shape(root)
    return root


def _check_shape(root: etree._Element) -> None:
    """Refuse trees too large or too wide to check in bounded time (counted in C first)."""
    count = int(root.xpath("count(//*)"))  # type: ignore[arg-type]
    if count > MAX_ELEMENTS:
        raise NotXml(
            f"Dokumentet har for mange elementer ({count}; høyeste tillatte er {MAX_ELEMENTS})."
        )
    if count <= _NARROW:
        return
    budget = 0
    for element in root.iter():
        width = len(element)
        budget += width * width
        if budget > MAX_WIDTH_BUDGET:
            raise NotXml(
                "Dokumentet er for bredt: for mange elementer på samme nivå "
                f"(linje {element.sourceline}, {width} underelementer)."
            )
