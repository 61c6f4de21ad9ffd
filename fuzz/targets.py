"""The fuzz targets: bytes in; a ``MessageError`` is a correct answer, anything else a crash."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import cache

from gateway.claims.message_types import document_type
from gateway.claims.msghead import parse_msghead
from gateway.ebxml import mime
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.unwrap import Packaged, unwrap
from gateway.errors import MessageError
from gateway.validation.catalog import SchemaCatalog
from gateway.validation.safe_xml import parse_xml

MAX_BYTES = 1024 * 1024


@cache
def _catalog() -> SchemaCatalog:
    catalog = SchemaCatalog.default()
    catalog.compile()
    return catalog


def mime_unwrap(data: bytes) -> None:
    """What the pipeline does with received bytes up to the ebXML header."""
    try:
        unwrapped = unwrap(data, max_bytes=MAX_BYTES)
        if isinstance(unwrapped, Packaged):
            mime.unwrap(data)
            parse_envelope(unwrapped.package.envelope.body)
    except MessageError:
        pass


def xml_reader(data: bytes) -> None:
    """The hardened parser and the schema report (its paths and reasons)."""
    try:
        root = parse_xml(data, max_bytes=MAX_BYTES)
    except MessageError:
        return
    report = _catalog().validate(root)
    report.summary()
    with contextlib.suppress(MessageError):
        report.raise_if_invalid()


def claim_parser(data: bytes) -> None:
    """A schema-valid MsgHead through the claim reader, as the pipeline reads it."""
    try:
        root = parse_xml(data, max_bytes=MAX_BYTES)
        if not _catalog().validate(root).valid:
            return
        message_type = document_type(root, None)
        document = parse_msghead(root)
        message_type.read(document.content)
    except MessageError:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "mime": mime_unwrap,
    "xml": xml_reader,
    "claim": claim_parser,
}
