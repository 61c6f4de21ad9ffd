"""Write the ebMS 2.0 SOAP envelope of a message we send (an AppRec reply, a signal).

``build_envelope`` writes a whole envelope; the signal builders in ``gateway.ebxml.signals`` reuse
the element writers. The envelopes leave the end of ``SOAP:Header`` free for a ``ds:Signature``
to be appended.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from lxml import etree

from gateway.ebxml.model import EBMS_VERSION, ManifestReference, MessageHeader, Party
from gateway.ebxml.namespaces import ACTOR_TO_PARTY_MSH, EB_NS, SOAP_NS, XLINK_NS

__all__ = [
    "append_party",
    "append_text",
    "build_envelope",
    "envelope_skeleton",
    "format_timestamp",
    "reply_header",
    "serialize",
]


def reply_header(
    incoming: MessageHeader,
    *,
    action: str,
    service: str,
    service_type: str | None,
    message_id: str,
    timestamp: datetime,
    duplicate_elimination: bool = False,
) -> MessageHeader:
    """Our reply's header: From/To swapped, same CPA and conversation, refers to ``incoming``."""
    return MessageHeader(
        from_party=incoming.to_party,
        to_party=incoming.from_party,
        cpa_id=incoming.cpa_id,
        conversation_id=incoming.conversation_id,
        service=service,
        service_type=service_type,
        action=action,
        message_id=message_id,
        timestamp=timestamp,
        ref_to_message_id=incoming.message_id,
        time_to_live=None,
        duplicate_elimination=duplicate_elimination,
    )


def build_envelope(
    header: MessageHeader,
    *,
    manifest: Sequence[ManifestReference] = (),
    ack_requested: bool = False,
    ack_signed: bool = False,
) -> bytes:
    """The SOAP envelope of a message we send; a ``ds:Signature`` may be appended to its Header.

    Raises ``ValueError`` for empty required values or naive datetimes.
    """
    root, soap_header, soap_body = envelope_skeleton(header)
    if ack_requested:
        ack = etree.SubElement(soap_header, _eb("AckRequested"))
        ack.set(_soap("actor"), ACTOR_TO_PARTY_MSH)
        ack.set(_soap("mustUnderstand"), "1")
        ack.set(_eb("version"), EBMS_VERSION)
        ack.set(_eb("signed"), "true" if ack_signed else "false")
    elif ack_signed:
        raise ValueError("ack_signed requires ack_requested")
    if manifest:
        manifest_el = etree.SubElement(soap_body, _eb("Manifest"))
        manifest_el.set(_eb("version"), EBMS_VERSION)
        for reference in manifest:
            _require(reference.href, "manifest href")
            ref_el = etree.SubElement(manifest_el, _eb("Reference"))
            ref_el.set(f"{{{XLINK_NS}}}href", reference.href)
            ref_el.set(f"{{{XLINK_NS}}}type", "simple")
    return serialize(root)


def envelope_skeleton(
    header: MessageHeader,
) -> tuple[etree._Element, etree._Element, etree._Element]:
    """A new ``SOAP:Envelope`` with its ``eb:MessageHeader``: (envelope, SOAP:Header, SOAP:Body)."""
    root = etree.Element(_soap("Envelope"), nsmap={"SOAP": SOAP_NS, "eb": EB_NS, "xlink": XLINK_NS})
    soap_header = etree.SubElement(root, _soap("Header"))
    soap_body = etree.SubElement(root, _soap("Body"))
    mh = etree.SubElement(soap_header, _eb("MessageHeader"))
    mh.set(_soap("mustUnderstand"), "1")
    mh.set(_eb("version"), EBMS_VERSION)
    append_party(mh, "From", header.from_party)
    append_party(mh, "To", header.to_party)
    append_text(mh, "CPAId", header.cpa_id)
    append_text(mh, "ConversationId", header.conversation_id)
    service = append_text(mh, "Service", header.service)
    if header.service_type is not None:
        service.set(_eb("type"), _require(header.service_type, "service_type"))
    append_text(mh, "Action", header.action)
    data = etree.SubElement(mh, _eb("MessageData"))
    append_text(data, "MessageId", header.message_id)
    append_text(data, "Timestamp", format_timestamp(header.timestamp))
    if header.ref_to_message_id is not None:
        append_text(data, "RefToMessageId", header.ref_to_message_id)
    if header.time_to_live is not None:
        append_text(data, "TimeToLive", format_timestamp(header.time_to_live))
    if header.duplicate_elimination:
        etree.SubElement(mh, _eb("DuplicateElimination"))
    return root, soap_header, soap_body


def append_party(parent: etree._Element, local: str, party: Party) -> etree._Element:
    """Append an ``eb:From``/``eb:To`` element for ``party``."""
    if not party.party_ids:
        raise ValueError(f"{local} party needs at least one PartyId")
    element = etree.SubElement(parent, _eb(local))
    for party_id in party.party_ids:
        id_element = append_text(element, "PartyId", party_id.value)
        if party_id.type is not None:
            id_element.set(_eb("type"), _require(party_id.type, "PartyId type"))
    if party.role is not None:
        append_text(element, "Role", party.role)
    return element


def format_timestamp(value: datetime) -> str:
    """xs:dateTime in UTC with ``Z``; microseconds only when there are any."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def serialize(root: etree._Element) -> bytes:
    """UTF-8 with an XML declaration, no pretty-printing (whitespace would be signed too)."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def append_text(parent: etree._Element, local: str, text: str) -> etree._Element:
    """Append an ``eb:<local>`` child with non-empty text."""
    element = etree.SubElement(parent, _eb(local))
    element.text = _require(text, f"eb:{local}")
    return element


def _require(value: str, what: str) -> str:
    if not value or not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


def _eb(local: str) -> str:
    return f"{{{EB_NS}}}{local}"


def _soap(local: str) -> str:
    return f"{{{SOAP_NS}}}{local}"

